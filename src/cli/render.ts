/**
 * `multi-networkpolicy-tc render`: reads manifests from disk and prints what
 * the agent would enforce on a node, for people (text) or tools (json).
 */
import { parseArgs } from "node:util";
import { loadManifests } from "../cluster/manifests.ts";
import { formatObjectError } from "../cluster/types.ts";
import type { AllowEntry, DirectionRules, InterfaceRules, NodeRules } from "../policy/model.ts";
import { computeNodeRules } from "../policy/engine.ts";
import { batchText } from "../tc/serialize.ts";
import { generateProgram } from "../tc/generate.ts";
import { UsageError } from "./flags.ts";

/** Output formats of `render`. */
export const RENDER_FORMATS = ["text", "json", "tc"] as const;

/** `render`'s own options. */
export interface RenderOptions {
  paths: string[];
  node: string;
  networkPlugins: string[];
  output: typeof RENDER_FORMATS[number];
  help: boolean;
}

/** `render --help`. */
export const RENDER_HELP = `Usage: multi-networkpolicy-tc render -f PATH [-f PATH...] [flags]

Reads Kubernetes manifests (YAML or JSON files, or directories of them;
multi-document and List kinds) and prints, for every pod interface on the
node that the agent would police, each direction's state and allow list.
Problems with objects are printed to stderr, one line each, naming the
object and the field; the rest is still rendered. Exit status: 0 when no
problem was found, 1 when some were (output is still complete), 2 on usage
errors.

Flags:
  -f, --filename PATH          manifest file or directory (repeatable, required)
      --node NAME              node whose pods are rendered (default: this host's name)
      --network-plugins LIST   comma-separated CNI plugin types to police
                               (default accelerated-bridge)
  -o, --output FORMAT          text, json, or tc: the tc -batch program per
                               interface, as the agent would apply it to a
                               representor with nothing of ours (default text)
  -h, --help                   this help
`;

/** Parses `render`'s arguments. */
export function parseRenderFlags(args: string[], defaultNode: () => string): RenderOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        filename: { type: "string", short: "f", multiple: true },
        node: { type: "string" },
        "network-plugins": { type: "string", multiple: true },
        output: { type: "string", short: "o" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError((error as Error).message.split("\n")[0], { cause: error });
  }
  const values = parsed.values;
  const output = values.output ?? "text";
  if (!(RENDER_FORMATS as readonly string[]).includes(output)) {
    throw new UsageError(`invalid value "${output}" for --output: want text, json or tc`);
  }
  const paths = values.filename ?? [];
  if (!values.help && paths.length === 0) throw new UsageError("render needs at least one -f PATH");
  const plugins = (values["network-plugins"] ?? ["accelerated-bridge"])
    .flatMap((item) => item.split(",")).map((item) => item.trim()).filter(Boolean);
  if (plugins.length === 0) throw new UsageError("invalid value for --network-plugins: empty list");
  return {
    paths,
    node: values.node ?? defaultNode(),
    networkPlugins: plugins,
    output: output as RenderOptions["output"],
    help: values.help ?? false,
  };
}

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
    `${rules.pod.namespace}/${rules.pod.name} ${rules.interfaceName} ` +
    `(network ${rules.network}, PCI ${rules.pciAddress}, ${ips})`,
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
  const result = computeNodeRules(loaded.state, {
    node: options.node,
    networkPlugins: options.networkPlugins,
  });
  const errors = [...loaded.errors, ...result.errors];
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
