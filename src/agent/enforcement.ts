/**
 * The node's TC enforcement as the daemon runs it: the `--tc-driver` driver,
 * the actuator, the sink on the representors found in sysfs, drop counters,
 * `--offload` and the reports that go to metrics and Events; and the watch
 * on the kernel's link and TC notifications that repairs devices someone
 * else changed.
 */
import { baseDriver, createDriver, type TcDriverName } from "../drivers/factory.ts";
import { NetlinkDriver } from "../drivers/netlink/driver.ts";
import { RtnetlinkMonitor } from "../drivers/netlink/monitor.ts";
import { interfaceIndex } from "../drivers/netlink/socket.ts";
import { hwTcOffload } from "../interfaces/ethtool.ts";
import { log } from "../log/klog.ts";
import { listRepresentors, RepresentorResolver } from "../sriov/representor.ts";
import { Actuator } from "../tc/actuator.ts";
import { blockIndexOf, SharedBlocks } from "../tc/blocks.ts";
import type { TcDriver } from "../tc/driver.ts";
import { DriftWatch } from "./drift_watch.ts";
import { DropCounters } from "./drop_counters.ts";
import { EnforcementReports } from "./enforcement_reports.ts";
import { type OffloadMode, OffloadPolicy } from "./offload_policy.ts";
import { TcSink } from "./tc_sink.ts";
import { bondAwareLookup } from "./uplink_lookup.ts";

/** What enforcement is configured with (a part of the agent's options). */
export interface EnforcementOptions {
  tcDriver: TcDriverName;
  podRulesPath: string;
  sysfsRoot: string;
  offload: OffloadMode;
}

/** The parts of the node's enforcement. */
export interface Enforcement {
  driver: TcDriver;
  sink: TcSink;
  reports: EnforcementReports;
  offload: OffloadPolicy;
  /** The shared blocks of VF-LAG bonds and their uplinks, as last placed. */
  blocks: SharedBlocks;
}

/** Builds the node's enforcement; throws when the driver cannot be set up. */
export function createEnforcement(options: EnforcementOptions): Enforcement {
  const blocks = new SharedBlocks();
  const driver = createDriver(options.tcDriver, blocks);
  const drops = new DropCounters(driver);
  const reports = new EnforcementReports();
  const actuator = new Actuator(driver, {
    podRulesPath: options.podRulesPath || undefined,
    beforeChange: (device) => drops.settle(device),
  });
  const holder: { sink?: TcSink } = {};
  const offload = new OffloadPolicy(options.offload, {
    hwTcOffload: (device) => devicesOffload(device, blocks),
    copies: (device) => hardwareCopies(device, blocks),
    read: (device) => driver.read(device),
    resync: (cause) => void holder.sink?.repair("all", cause),
    reports,
  });
  const sink = new TcSink(
    actuator,
    bondAwareLookup(new RepresentorResolver(options.sysfsRoot), blocks),
    () => listRepresentors(options.sysfsRoot),
    drops,
    {
      program: (role) => offload.program(role),
      retain: (keys) => offload.retain(keys),
      synced: (role, result) => offload.check(role, result),
      repaired: (device, drift) => reports.repaired(device, drift),
      foreignAhead: (device, pods, ahead) => reports.foreignAhead(device, pods, ahead),
      released: (device) => reports.released(device),
      attach: (metrics, events) => reports.attach(metrics, events),
    },
  );
  holder.sink = sink;
  log.info("TC enforcement ready", {
    driver: options.tcDriver,
    sysfsRoot: options.sysfsRoot,
    podRulesPath: options.podRulesPath,
    offload: options.offload,
  });
  return { driver, sink, reports, offload, blocks };
}

/** A running watch on the kernel's notifications. */
export interface RunningWatch {
  stop(): Promise<void>;
}

/** Whether a netlink port id is one of the driver's own sockets (its changes are not drift). */
function ownPort(driver: TcDriver): (portid: number) => boolean {
  const base = baseDriver(driver);
  return (portid) => base instanceof NetlinkDriver && base.ownsPort(portid);
}

/** `hw-tc-offload` of a device; of a shared block: on only when on for every uplink bound to it. */
function devicesOffload(device: string, blocks: SharedBlocks): boolean | null {
  const index = blockIndexOf(device);
  if (index === null) return hwTcOffload(device);
  const each = blocks.members(index).map(hwTcOffload);
  if (each.includes(false)) return false;
  return each.length === 0 || each.includes(null) ? null : true;
}

/** How many hardware copies of each filter a device makes: one per uplink for a shared block. */
function hardwareCopies(device: string, blocks: SharedBlocks): number {
  const index = blockIndexOf(device);
  return index === null ? 1 : Math.max(1, blocks.members(index).length);
}

/**
 * Starts watching link and TC notifications: a device of ours that someone
 * else changed, or that was re-created, is read back and repaired. Null
 * (with a warning) when netlink notifications cannot be had: the periodic
 * resync still repairs, later.
 */
export function startDriftWatch(
  sink: TcSink,
  driver: TcDriver,
  blocks?: SharedBlocks,
): RunningWatch | null {
  let monitor: RtnetlinkMonitor;
  try {
    monitor = new RtnetlinkMonitor();
  } catch (error) {
    log.warning("cannot watch the kernel's link and TC notifications; only resyncs repair", {
      err: error instanceof Error ? error.message : String(error),
    });
    return null;
  }
  const watch = new DriftWatch(sink, {
    indexOf: interfaceIndex,
    isOwnPort: ownPort(driver),
    blockMembers: (index) => blocks?.members(index) ?? [],
  });
  const done = (async () => {
    try {
      for await (const event of monitor) watch.handle(event);
    } catch (error) {
      log.warning("the kernel notification watch stopped; only resyncs repair", {
        err: error instanceof Error ? error.message : String(error),
      });
    }
  })();
  log.info("watching link and TC notifications to repair devices someone else changes");
  return {
    async stop() {
      await monitor.close();
      await done;
      await watch.stop();
    },
  };
}
