/**
 * `multi-networkpolicy-tc explain`: why a packet is allowed or dropped, at
 * the policy level, from manifests or a live cluster listed once.
 */
import { loadManifests } from "../cluster/manifests.ts";
import { type ClusterState, formatObjectError } from "../cluster/types.ts";
import {
  type DirectionReport,
  type EndReport,
  explainPacket,
  type Explanation,
  type RuleMatch,
} from "../policy/explain.ts";
import { ExplainInputError } from "../policy/explain_ends.ts";
import { loadKubeConfig } from "../watching/kubeconfig.ts";
import { listCluster } from "../watching/list.ts";
import { escapeControls } from "../log/quote.ts";
import type { ExplainOptions } from "./explain_flags.ts";

/** An end as the header names it: `ns/pod interface` or the address. */
function endLabel(end: EndReport): string {
  return end.pod === undefined ? end.ip : `${end.pod} ${end.interface}`;
}

function ruleText(match: RuleMatch, direction: DirectionReport["direction"]): string {
  const peer = match.peer === null ? "all peers" : `peer ${match.peer}`;
  const port = match.port === null ? "all ports" : `port ${match.port}`;
  return `allowed by ${match.policy} ${direction} rule ${match.rule}, ${peer}, ${port}`;
}

function directionText(report: DirectionReport): string[] {
  const head = `  ${report.direction} of ${report.pod} ${report.interface}`;
  if (report.denyAll !== undefined) {
    return [`${head}: ${report.verdict}`, `    ${report.denyAll}: deny all both ways`];
  }
  if (!report.isolated) return [`${head}: ${report.verdict} (not isolated)`];
  return [
    `${head}: ${report.verdict}`,
    `    isolated by ${report.isolatedBy.join(", ")}`,
    ...(report.allowedBy.length === 0
      ? ["    no rule allows it"]
      : report.allowedBy.map((match) => `    ${ruleText(match, report.direction)}`)),
  ];
}

/** A line for an end that has no direction of its own to check. */
function unpolicedText(end: EndReport): string[] {
  if (end.policed) return [];
  if (end.pod === undefined) return [`  ${end.ip}: not policed (${end.reason})`];
  return [`  ${endLabel(end)}: not policed (${end.reason})`];
}

/** An end with its address (and port): `ns/pod net1 (10.0.0.1:80)`, or `[fd00::1]:80`. */
function endText(end: EndReport, port?: number): string {
  const address = port === undefined
    ? end.ip
    : end.ip.includes(":")
    ? `[${end.ip}]:${port}`
    : `${end.ip}:${port}`;
  return end.pod === undefined ? address : `${endLabel(end)} (${address})`;
}

/** The answer as people read it: the verdict, then each direction and why. */
export function formatExplanationText(answer: Explanation): string {
  const lines = [
    `${answer.protocol} ${endText(answer.from)} -> ${endText(answer.to, answer.port)} on ` +
    `${answer.network}: ${answer.verdict}`,
    ...unpolicedText(answer.from),
    ...answer.directions.flatMap(directionText),
    ...unpolicedText(answer.to),
  ];
  // Names and reasons come from cluster objects: no terminal control characters get through.
  return `${lines.map(escapeControls).join("\n")}\n`;
}

/** The cluster: from manifests, or listed once from the API server; problems go to stderr. */
async function clusterState(options: ExplainOptions): Promise<ClusterState> {
  if (options.paths.length === 0) {
    const kc = loadKubeConfig({ kubeconfig: options.kubeconfig, master: options.master });
    const live = await listCluster(kc);
    for (const error of live.errors) console.error(`error: ${formatObjectError(error)}`);
    return live.state;
  }
  const loaded = await loadManifests(options.paths);
  for (const warning of loaded.warnings) console.error(`warning: ${formatObjectError(warning)}`);
  for (const error of loaded.errors) console.error(`error: ${formatObjectError(error)}`);
  return loaded.state;
}

/** Runs `explain`; returns the exit status. */
export async function runExplain(options: ExplainOptions): Promise<number> {
  let state;
  try {
    state = await clusterState(options);
  } catch (error) {
    if (options.paths.length > 0) throw error;
    console.error(`multi-networkpolicy-tc explain: ${(error as Error).message.split("\n")[0]}`);
    return 1;
  }
  let answer;
  try {
    answer = explainPacket(state, {
      from: options.from,
      to: options.to,
      network: options.network || undefined,
      family: options.family,
      protocol: options.protocol,
      port: options.port,
    }, { networkPlugins: options.networkPlugins });
  } catch (error) {
    if (!(error instanceof ExplainInputError)) throw error;
    console.error(`multi-networkpolicy-tc explain: ${escapeControls(error.message)}`);
    return 1;
  }
  if (options.output === "json") console.log(JSON.stringify(answer, null, 2));
  else console.log(formatExplanationText(answer).trimEnd());
  return 0;
}
