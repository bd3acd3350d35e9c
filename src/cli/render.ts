/**
 * `multi-networkpolicy-tc render`: reads manifests from disk and prints what
 * the agent would enforce on a node, for people (text) or tools (json).
 */
import { loadManifests } from "../cluster/manifests.ts";
import { formatObjectError } from "../cluster/types.ts";
import type { AllowEntry, DirectionRules, InterfaceRules, NodeRules } from "../policy/model.ts";
import { computeNodeRules } from "../policy/engine.ts";
import { batchText } from "../tc/serialize.ts";
import { deviceProgram, type DeviceRole } from "../tc/generate.ts";
import { checkProgram, type ProgramCheck } from "../tc/offload/checker.ts";
import { MLX5_PROFILE, type OffloadProfile } from "../tc/offload/profile.ts";
import { nodeRoles, PLACEHOLDER_UPLINK, placeholderPlacement } from "../tc/placement.ts";
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

/** The checker's counts for a program, as one line's end. */
function checkText(check: ProgramCheck): string {
  const { filters, hardware, softwareOnly, breaks } = check.summary;
  return `${filters} filters: ${hardware} hardware, ${softwareOnly} software-only, ${breaks} breaks`;
}

/** What a device is, for people. */
function describeRole(role: DeviceRole): string {
  const sender = role.sender?.rules;
  return sender
    ? `representor of ${sender.pod.namespace}/${sender.pod.name} ${sender.interfaceName} ` +
      `(network ${sender.network}, PCI ${sender.pciAddress})`
    : "uplink of the PF";
}

/** One device's program as a comment header and `tc -batch` text. */
function deviceText(role: DeviceRole): string[] {
  const program = deviceProgram(role, 1);
  const receivers = role.receivers.map(({ rules }) => `${rules.pod.namespace}/${rules.pod.name}`);
  return [
    `# ${role.device}: ${describeRole(role)}: ${checkText(checkProgram(program.filters))}`,
    ...(receivers.length > 0
      ? [`#   checks traffic entering here for ${receivers.join(", ")}`]
      : []),
    batchText(role.device, [
      { op: "qdisc-add" },
      ...program.filters.map((filter) => ({ op: "filter-add" as const, filter })),
    ]),
  ];
}

/** The devices the node's interfaces need programs on, with placeholder names. */
function nodeDevices(result: NodeRules) {
  const placed = placeholderPlacement(result.interfaces);
  return { placed, roles: nodeRoles(placed) };
}

/**
 * Formats the TC program of every device of the node as `tc -batch` text:
 * the representor of each interface (REP0, REP1, ... in the order of the
 * text output) and the uplink (UPLINK), with one conntrack zone per
 * interface, each with the offload checker's counts.
 */
export function formatRulesTc(result: NodeRules): string {
  const { placed, roles } = nodeDevices(result);
  const out: string[] = [
    `# ${PLACEHOLDER_UPLINK} stands for the uplink representor of the VFs' PF, REP<i> for the ` +
    `representor of the i-th interface; zone i+1 is its conntrack zone`,
  ];
  for (const role of roles) out.push(...deviceText(role));
  const programmed = new Set(roles.map((role) => role.device));
  placed.forEach((p) => {
    if (programmed.has(p.representor)) return;
    out.push(
      `# ${p.representor}: representor of ${p.rules.pod.namespace}/${p.rules.pod.name} ` +
        `${p.rules.interfaceName} (network ${p.rules.network}): no filters (nothing to check)`,
      "",
    );
  });
  return `${out.join("\n")}\n`;
}

/**
 * The offload check of every device's program: per device its counts, and
 * each filter that would break on the NIC with the reason. `breaks` is the
 * number of such filters.
 */
export function formatOffloadCheck(
  result: NodeRules,
  profile: OffloadProfile = MLX5_PROFILE,
): { text: string; breaks: number } {
  const lines: string[] = [`offload profile: ${profile.name}`];
  let breaks = 0;
  for (const role of nodeDevices(result).roles) {
    const check = checkProgram(deviceProgram(role, 1).filters, profile);
    lines.push(`${role.device} (${describeRole(role)}): ${checkText(check)}`);
    for (const item of check.filters) {
      if (item.classification !== "breaks") continue;
      breaks++;
      const f = item.filter;
      lines.push(
        `  breaks: ${f.hook} chain ${f.chain} prio ${f.prio} handle ${f.handle}: ${item.reason}`,
      );
    }
    for (const note of check.notes) lines.push(`  note: ${note}`);
  }
  return { text: `${lines.join("\n")}\n`, breaks };
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
  if (options.offloadCheck) {
    const check = formatOffloadCheck(result);
    await writeStdout(check.text);
    if (check.breaks > 0) {
      console.error(`error: ${check.breaks} filters would break on the NIC (see above)`);
      return 1;
    }
  } else if (options.output === "json") {
    await writeStdout(`${JSON.stringify({ ...result, errors }, null, 2)}\n`);
  } else if (options.output === "tc") {
    await writeStdout(formatRulesTc(result));
  } else {
    await writeStdout(formatRulesText(result));
  }
  return errors.length > 0 ? 1 : 0;
}
