/**
 * The narrow interface between the actuator and the kernel: read what a
 * representor carries, and apply an ordered list of changes to it.
 */
import type { FilterCounter, TcCommand, TcState } from "./model.ts";

/** A TC error from the kernel or the tc tool, naming device and command. */
export class TcError extends Error {
  override name = "TcError";
  constructor(readonly device: string, message: string, options?: ErrorOptions) {
    super(`${device}: ${message}`, options);
  }
}

/** Thrown when the device does not exist (a representor that went away). */
export class DeviceMissing extends TcError {
  override name = "DeviceMissing";
}

/**
 * A kernel object that the TC model cannot hold (another tool's filter, or a
 * key or action the agent never writes); a driver reports it as foreign.
 */
export class Unrepresentable extends Error {
  override name = "Unrepresentable";
}

/** Root qdiscs the kernel attaches by itself: neither ours nor worth reporting. */
const DEFAULT_QDISCS = new Set(["noqueue", "mq", "fq_codel", "pfifo_fast"]);

/** Whether a qdisc kind is one the kernel attaches by default. */
export function isDefaultQdisc(kind: string): boolean {
  return DEFAULT_QDISCS.has(kind);
}

/** Counters a driver keeps, for metrics and benchmarks. */
export interface DriverStats {
  /** Processes started (cmdline) or sendmsg calls made (netlink). */
  calls: number;
}

/** Programs TC on representors. */
export interface TcDriver {
  readonly name: string;
  readonly stats: DriverStats;
  /** Reads the clsact qdisc and every filter on the device. */
  read(device: string): Promise<TcState>;
  /**
   * Reads what the filters on the device's ingress hook have counted, by
   * {@link counterKey} (empty without a clsact qdisc): one cheap read, for
   * drop counters.
   */
  counters(device: string): Promise<Map<string, FilterCounter>>;
  /**
   * Applies the commands in order and stops at a failure: `cmdline` at the
   * failing line of its one `tc -batch`, `netlink` at the end of the failing
   * step (the dispatch is never touched after its chains failed).
   */
  apply(device: string, commands: TcCommand[]): Promise<void>;
}
