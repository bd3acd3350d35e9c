/**
 * `multi-networkpolicy-tc render`: reads manifests from disk and prints what
 * the agent would enforce on a node, for people (text) or tools (json).
 */
import { loadManifests } from "../cluster/manifests.ts";
import { formatObjectError } from "../cluster/types.ts";
import type { AllowEntry, DirectionRules, InterfaceRules, NodeRules } from "../policy/model.ts";
import { computeNodeRules } from "../policy/engine.ts";
import { batchText } from "../tc/serialize.ts";
import { generateProgram } from "../tc/generate.ts";
import { withinFilterLimit } from "../tc/limits.ts";
import type { RenderOptions } from "./render_flags.ts";

function portsText(entry: AllowEntry): string {
  if (entry.protocol === "any") return "any protocol, any port";
  const ports = entry.ports.map((range) =>
    range.first === 0 && range.last === 65535
      ? "any port"
      : range.first === range.last
      ? String(range.first)
      : `${range.first}-${range.last}`
  );
  return `${entry.protocol} ${ports.join(",")}`;
}

function directionText(name: string, rules: DirectionRules, peerWord: string): string[] {
  if (!rules.isolated) return [`  ${name}: open (no policy isolates it)`];
  const lines = [`  ${name}: isolated by ${rules.policies.join(", ")}`];
  if (rules.allow.length === 0) lines.push("    deny all (nothing allowed)");
  for (const entry of rules.allow) {
    lines.push(`    allow ${portsText(entry)} ${peerWord} ${entry.cidrs.join(", ")}`);
  }
  return lines;
}

function interfaceText(rules: InterfaceRules): string[] {
  const ips = rules.ips.length > 0 ? rules.ips.join(", ") : "no addresses";
  return [
    `${rules.pod.namespace}/${rules.pod.name} ${rules.interfaceName || "(unnamed interface)"} ` +
    `(network ${rules.network}, PCI ${rules.pciAddress}, ${ips})`,
    ...(rules.denyAll ? [`  ${rules.denyAll}: deny all both ways`] : []),
    ...(rules.overLimit
      ? [
        `  over the filter limit: its program needs ${rules.overLimit.filters} filters, ` +
        `more than --max-filters-per-interface ${rules.overLimit.max}: deny all both ways`,
      ]
      : []),
    ...directionText("ingress", rules.ingress, "from"),
    ...directionText("egress", rules.egress, "to"),
  ];
}

/** Formats a node's rules as the text people read. */
export function formatRulesText(result: NodeRules): string {
  const count = result.interfaces.length;
  const lines = [
    `node ${result.node}: ${count} interface${count === 1 ? "" : "s"} on policed networks`,
  ];
  for (const rules of result.interfaces) lines.push("", ...interfaceText(rules));
  return `${lines.join("\n")}\n`;
}

/** Placeholder device in `-o tc` output: the representor is only known on the node. */
export const PLACEHOLDER_DEVICE = "REPRESENTOR";

/** Formats each interface's full TC program as `tc -batch` text. */
export function formatRulesTc(result: NodeRules): string {
  const out: string[] = [];
  for (const rules of result.interfaces) {
    const program = generateProgram(rules, { device: PLACEHOLDER_DEVICE, zone: 1, generation: 1 });
    out.push(
      `# ${rules.pod.namespace}/${rules.pod.name} ${rules.interfaceName} (network ${rules.network}, ` +
        `PCI ${rules.pciAddress}): ${program.filters.length} filters`,
    );
    if (!program.enabled) {
      out.push("# both directions open: no qdisc, no filters", "");
      continue;
    }
    out.push(
      `# ${PLACEHOLDER_DEVICE} stands for the VF's representor, zone 1 for its conntrack zone`,
      batchText(PLACEHOLDER_DEVICE, [
        { op: "qdisc-add" },
        ...program.filters.map((filter) => ({ op: "filter-add" as const, filter })),
      ]),
    );
  }
  return `${out.join("\n")}\n`;
}

/** Writes all of `text` to stdout; a reader that went away (`| head`) is not an error. */
async function writeStdout(text: string): Promise<void> {
  let bytes = new TextEncoder().encode(text);
  try {
    while (bytes.length > 0) bytes = bytes.subarray(await Deno.stdout.write(bytes));
  } catch (error) {
    if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
  }
}

/** Runs `render`; returns the exit status. */
export async function runRender(options: RenderOptions): Promise<number> {
  const loaded = await loadManifests(options.paths);
  const rendered = computeNodeRules(loaded.state, {
    node: options.node,
    networkPlugins: options.networkPlugins,
  });
  const result = {
    ...rendered,
    interfaces: rendered.interfaces.map((rules) =>
      withinFilterLimit(rules, options.maxFiltersPerInterface)
    ),
  };
  const errors = [...loaded.errors, ...result.errors];
  for (const warning of loaded.warnings) console.error(`warning: ${formatObjectError(warning)}`);
  for (const error of errors) console.error(`error: ${formatObjectError(error)}`);
  if (options.output === "json") {
    await writeStdout(`${JSON.stringify({ ...result, errors }, null, 2)}\n`);
  } else if (options.output === "tc") {
    await writeStdout(formatRulesTc(result));
  } else {
    await writeStdout(formatRulesText(result));
  }
  return errors.length > 0 ? 1 : 0;
}
