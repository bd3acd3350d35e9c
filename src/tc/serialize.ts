/**
 * TC objects → `tc -batch` text (pure). Every token is checked against a
 * strict character set before it is written, so no value can end a
 * command or start another one.
 */
import { show } from "../log/quote.ts";
import { checkInterfaceName } from "../cluster/validate.ts";
import type { FlowerMatch, Hook, TcAction, TcCommand, TcFilter } from "./model.ts";
import { blockMask } from "./ports.ts";
import { checkedCookie } from "./cookie.ts";
import { blockIndexOf } from "./blocks.ts";

/** A value that must not reach a tc batch file. */
export class UnsafeTcInput extends Error {
  override name = "UnsafeTcInput";
}

const SAFE_TOKEN = /^[A-Za-z0-9._:/+-]+$/;

function token(value: string | number): string {
  const text = String(value);
  if (!SAFE_TOKEN.test(text)) throw new UnsafeTcInput(`unsafe tc token ${show(text)}`);
  return text;
}

/**
 * Checks a device name for use in tc commands: a netdev, or a shared block
 * (`block:N`, src/tc/blocks.ts); throws {@link UnsafeTcInput}.
 */
export function checkedDevice(device: string): string {
  return blockIndexOf(device) !== null ? device : checkedNetdev(device);
}

/** A netdev name, checked; a shared block is refused ({@link UnsafeTcInput}). */
export function checkedNetdev(device: string): string {
  const problem = checkInterfaceName(device);
  if (problem) throw new UnsafeTcInput(problem);
  return device;
}

/** Where a filter or chain command points: `dev DEV HOOK`, or `block N` for a shared block. */
export function targetText(device: string, hook: Hook): string[] {
  const block = blockIndexOf(device);
  if (block !== null) return ["block", token(block)];
  return ["dev", checkedNetdev(device), hook];
}

function matchText(match: FlowerMatch): string[] {
  const out: string[] = [];
  if (match.vlanId !== undefined) out.push("vlan_id", token(match.vlanId));
  if (match.vlanEthType) out.push("vlan_ethtype", token(match.vlanEthType));
  if (match.cvlanEthType) out.push("cvlan_ethtype", token(match.cvlanEthType));
  if (match.ipProto) out.push("ip_proto", token(match.ipProto));
  if (match.icmpType !== undefined) out.push("type", token(match.icmpType));
  if (match.srcIp) out.push("src_ip", token(match.srcIp));
  if (match.dstIp) out.push("dst_ip", token(match.dstIp));
  if (match.dstPort) {
    // An aligned block is written as a masked port (offloadable); anything else as a range.
    const { first, last } = match.dstPort;
    const mask = blockMask(match.dstPort);
    const text = first === last
      ? `${first}`
      : mask === null
      ? `${first}-${last}`
      : `${first}/0x${mask.toString(16)}`;
    out.push("dst_port", token(text));
  }
  if (match.ctState) out.push("ct_state", token(match.ctState));
  return out;
}

function actionText(action: TcAction): string[] {
  switch (action.kind) {
    case "pass":
      return ["action", "pass"];
    case "drop":
      return ["action", "drop"];
    case "goto":
      return ["action", "goto", "chain", token(action.chain)];
    case "ct":
      return [
        "action",
        "ct",
        ...(action.commit ? ["commit"] : []),
        "zone",
        token(action.zone),
        "pipe",
      ];
  }
}

/**
 * The actions, the first one marked with the filter's cookie: iproute2's
 * `parse_action` reads `cookie HEX` right after an action's own arguments.
 */
function actionsText(filter: TcFilter): string[] {
  if (filter.cookie !== undefined && filter.actions.length === 0) {
    throw new UnsafeTcInput("a tc cookie needs an action to carry it");
  }
  return filter.actions.flatMap((action, i) => [
    ...actionText(action),
    ...(i === 0 && filter.cookie !== undefined ? ["cookie", checkedCookie(filter.cookie)] : []),
  ]);
}

function filterHead(verb: string, device: string, filter: TcFilter): string[] {
  return [
    "filter",
    verb,
    ...targetText(device, filter.hook),
    "protocol",
    token(filter.protocol),
    "prio",
    token(filter.prio),
    "handle",
    token(filter.handle),
    "chain",
    token(filter.chain),
    "flower",
  ];
}

/** `filter add|replace ...` for one filter (`skip_hw` right after `flower` when set). */
export function filterCommand(verb: "add" | "replace", device: string, filter: TcFilter): string {
  return [
    ...filterHead(verb, device, filter),
    ...(filter.skipHw ? ["skip_hw"] : []),
    ...matchText(filter.match),
    ...actionsText(filter),
  ].join(" ");
}

/** `filter del ...` for one filter, by its identity. */
export function filterDeleteCommand(device: string, filter: TcFilter): string {
  return filterHead("del", device, filter).join(" ");
}

/** `chain del ...`: removes a chain and every filter in it. */
export function chainDeleteCommand(device: string, hook: Hook, chain: number): string {
  return ["chain", "del", ...targetText(device, hook), "chain", token(chain)].join(" ");
}

/**
 * `qdisc add|del ... clsact` (or `ingress`, the Go agent's qdisc, to
 * delete); an add with `block` binds the clsact's ingress to that shared block.
 */
export function clsactCommand(
  verb: "add" | "del",
  device: string,
  kind: "clsact" | "ingress" = "clsact",
  block?: number,
): string {
  const shared = block === undefined ? [] : ["ingress_block", token(block)];
  return ["qdisc", verb, "dev", checkedNetdev(device), ...shared, kind].join(" ");
}

/** Renders commands as `tc -batch` text (one command per line). */
export function batchText(device: string, commands: TcCommand[]): string {
  const lines = commands.map((command) => {
    switch (command.op) {
      case "qdisc-add":
        return clsactCommand("add", device, "clsact", command.block);
      case "qdisc-del":
        return clsactCommand("del", device, command.kind);
      case "filter-add":
        return filterCommand("add", device, command.filter);
      case "filter-replace":
        return filterCommand("replace", device, command.filter);
      case "filter-del":
        return filterDeleteCommand(device, command.filter);
      case "chain-del":
        return chainDeleteCommand(device, command.hook, command.chain);
    }
  });
  return lines.length > 0 ? `${lines.join("\n")}\n` : "";
}
