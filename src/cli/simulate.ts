/**
 * `multi-networkpolicy-tc simulate`: one flow through the TC programs the
 * agent would write for a node (offline, from manifests) or that a live
 * node's devices hold, with the filters each packet met.
 */
import { loadManifests } from "../cluster/manifests.ts";
import { formatObjectError } from "../cluster/types.ts";
import { computeNodeRules } from "../policy/engine.ts";
import { withinFilterLimit } from "../tc/limits.ts";
import { Conntrack } from "../tc/simulator/conntrack.ts";
import { nodePrograms, resolveEnds } from "../tc/simulator/endpoints.ts";
import { type FlowResult, simulateFlow, type SimulationMode } from "../tc/simulator/flow.ts";
import type { SimulateOptions } from "./simulate_flags.ts";
import { livePrograms } from "./simulate_live.ts";

/**
 * The flow's verdict and its packets, as people read them; in hardware mode
 * each packet says whether the NIC decided it, and each filter where it ran.
 */
export function formatFlowText(
  header: string,
  result: FlowResult,
  mode: SimulationMode = "software",
): string {
  const lines = [`${header}: ${result.verdict}`];
  for (const packet of result.packets) {
    const fate = packet.verdict === "pass" ? "passes" : "dropped";
    const where = packet.inHardware === undefined
      ? ""
      : packet.inHardware
      ? " in hardware"
      : " in software";
    lines.push(`  ${packet.name} (${packet.direction}): ${fate}${where}`);
    if (packet.steps.length === 0) lines.push("    no filter on its way");
    for (const step of packet.steps) {
      const ran = mode === "hardware" ? `${step.where} ` : "";
      lines.push(
        `    ${step.end}: ${ran}${step.hook} chain ${step.chain} prio ${step.prio} ` +
          `handle ${step.handle}: ${step.did.join(", ")}`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}

/** The pods and the programs the flow meets: from manifests, or from a live node. */
async function sources(options: SimulateOptions) {
  if (options.kubeconfig !== "") {
    const live = await livePrograms(options);
    for (const error of live.errors) console.error(`error: ${formatObjectError(error)}`);
    return { pods: live.state.pods, programs: live.programs };
  }
  const loaded = await loadManifests(options.paths);
  for (const error of loaded.errors) console.error(`error: ${formatObjectError(error)}`);
  const rendered = computeNodeRules(loaded.state, {
    node: options.node,
    networkPlugins: options.networkPlugins,
  });
  const programs = nodePrograms(
    rendered.interfaces.map((rules) => withinFilterLimit(rules, options.maxFiltersPerInterface)),
  );
  return { pods: loaded.state.pods, programs };
}

/** Runs `simulate`; returns the exit status. */
export async function runSimulate(options: SimulateOptions): Promise<number> {
  let found;
  try {
    found = await sources(options);
  } catch (error) {
    if (options.kubeconfig === "") throw error;
    console.error(`multi-networkpolicy-tc simulate: ${(error as Error).message.split("\n")[0]}`);
    return 1;
  }
  const { pods, programs } = found;
  let ends;
  try {
    ends = resolveEnds(pods, programs, {
      from: options.from,
      to: options.to,
      network: options.network || undefined,
      family: options.family,
    });
  } catch (error) {
    console.error(`multi-networkpolicy-tc simulate: ${(error as Error).message}`);
    return 1;
  }
  // ICMP has no port: the flag's default stands for none.
  const port = options.protocol === "ICMP" ? undefined : options.port;
  const result = simulateFlow(
    ends.from,
    ends.to,
    { protocol: options.protocol, port, family: options.family },
    new Conntrack(),
    { mode: options.mode },
  );
  const header =
    `${options.protocol} ${ends.from.label} (${ends.from.address}) -> ${ends.to.label} ` +
    `(${ends.to.address}${port === undefined ? "" : `:${port}`}) on ${ends.network}, ` +
    `node ${options.node}, ${options.mode}`;
  if (options.output === "json") {
    console.log(JSON.stringify(
      {
        verdict: result.verdict,
        mode: options.mode,
        node: options.node,
        network: ends.network,
        from: { label: ends.from.label, address: ends.from.address },
        to: { label: ends.to.label, address: ends.to.address },
        protocol: options.protocol,
        port: port ?? null,
        packets: result.packets,
      },
      null,
      2,
    ));
  } else {
    console.log(formatFlowText(header, result, options.mode).trimEnd());
  }
  return 0;
}
