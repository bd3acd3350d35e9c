/**
 * `multi-networkpolicy-tc simulate`: one flow through the TC programs the
 * agent would write for a node (offline, from manifests), with the filters
 * each packet met.
 */
import { loadManifests } from "../cluster/manifests.ts";
import { formatObjectError } from "../cluster/types.ts";
import { computeNodeRules } from "../policy/engine.ts";
import { withinFilterLimit } from "../tc/limits.ts";
import { nodePrograms, resolveEnds } from "../tc/simulator/endpoints.ts";
import { type FlowResult, simulateFlow } from "../tc/simulator/flow.ts";
import type { SimulateOptions } from "./simulate_flags.ts";

/** The flow's verdict and its packets, as people read them. */
export function formatFlowText(header: string, result: FlowResult): string {
  const lines = [`${header}: ${result.verdict}`];
  for (const packet of result.packets) {
    lines.push(
      `  ${packet.name} (${packet.direction}): ${packet.verdict === "pass" ? "passes" : "dropped"}`,
    );
    if (packet.steps.length === 0) lines.push("    no filter on its way");
    for (const step of packet.steps) {
      lines.push(
        `    ${step.end}: ${step.hook} chain ${step.chain} prio ${step.prio} handle ${step.handle}: ` +
          step.did.join(", "),
      );
    }
  }
  return `${lines.join("\n")}\n`;
}

/** Runs `simulate`; returns the exit status. */
export async function runSimulate(options: SimulateOptions): Promise<number> {
  const loaded = await loadManifests(options.paths);
  for (const error of loaded.errors) console.error(`error: ${formatObjectError(error)}`);
  const rendered = computeNodeRules(loaded.state, {
    node: options.node,
    networkPlugins: options.networkPlugins,
  });
  const programs = nodePrograms(
    rendered.interfaces.map((rules) => withinFilterLimit(rules, options.maxFiltersPerInterface)),
  );
  let ends;
  try {
    ends = resolveEnds(loaded.state.pods, programs, {
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
  const result = simulateFlow(ends.from, ends.to, {
    protocol: options.protocol,
    port,
    family: options.family,
  });
  const header =
    `${options.protocol} ${ends.from.label} (${ends.from.address}) -> ${ends.to.label} ` +
    `(${ends.to.address}${port === undefined ? "" : `:${port}`}) on ${ends.network}, ` +
    `node ${options.node}, software`;
  if (options.output === "json") {
    console.log(JSON.stringify(
      {
        verdict: result.verdict,
        mode: "software",
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
    console.log(formatFlowText(header, result).trimEnd());
  }
  return 0;
}
