/**
 * `tc -json` output → TC objects (pure), so the actuator can compare what
 * the kernel has with what it wants. Filters it cannot represent are kept
 * as "foreign" descriptions: reported, never silently dropped.
 */
import { Unrepresentable } from "../../tc/driver.ts";
import { show } from "../../log/quote.ts";
import { formatCidr, parseCidr } from "../../net/ip.ts";
import { blockRange } from "../../tc/ports.ts";
import {
  counterKey,
  type EthProtocol,
  type FilterCounter,
  type FilterOffload,
  type FlowerMatch,
  type Hook,
  type InnerEthType,
  type IpProto,
  type TcAction,
  type TcFilter,
} from "../../tc/model.ts";

/** Filters read from one chain: those understood, and descriptions of the rest. */
export interface ParsedFilters {
  filters: TcFilter[];
  foreign: string[];
  /** Counters of the filters understood, when the output has them (`tc -s`). */
  counters: Map<string, FilterCounter>;
  /** Where each filter understood is (`in_hw` / `not_in_hw`), when tc printed it. */
  offload: Map<string, FilterOffload>;
}

type Json = unknown;
type JsonObject = Record<string, Json>;

function isObject(value: Json): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const PROTOCOLS: Record<string, EthProtocol> = {
  all: "all",
  ip: "ip",
  ipv4: "ip",
  ipv6: "ipv6",
  arp: "arp",
  "802.1q": "802.1q",
  "802.1ad": "802.1ad",
};

const INNER: Record<string, InnerEthType> = {
  ip: "ip",
  ipv4: "ip",
  ipv6: "ipv6",
  arp: "arp",
  "802.1q": "802.1q",
};

const IP_PROTOS: readonly IpProto[] = ["tcp", "udp", "sctp", "icmpv6"];

/** Key names `tc -json` prints for flower that carry no match of their own. */
const IGNORED_KEYS = new Set(["eth_type"]);

function parseMatch(keys: JsonObject): FlowerMatch {
  const match: FlowerMatch = {};
  for (const [key, value] of Object.entries(keys)) {
    if (IGNORED_KEYS.has(key)) continue;
    const text = typeof value === "string" ? value.toLowerCase() : undefined;
    switch (key) {
      case "vlan_ethtype":
      case "cvlan_ethtype": {
        const inner = text ? INNER[text] : undefined;
        if (!inner) throw new Unrepresentable(`${key} ${show(value)}`);
        if (key === "vlan_ethtype") match.vlanEthType = inner;
        else match.cvlanEthType = inner;
        break;
      }
      case "ip_proto":
        if (!text || !(IP_PROTOS as readonly string[]).includes(text)) {
          throw new Unrepresentable(`ip_proto ${show(value)}`);
        }
        match.ipProto = text as IpProto;
        break;
      case "icmp_type":
        match.icmpType = Number(value);
        if (!Number.isInteger(match.icmpType)) throw new Unrepresentable(`icmp_type ${value}`);
        break;
      case "src_ip":
      case "dst_ip": {
        if (typeof value !== "string") throw new Unrepresentable(`${key} ${show(value)}`);
        // tc prints host prefixes without a length, and IPv6 in inet_ntop's form
        // (`::ffff:1.2.3.4`): both are brought to the generator's canonical text.
        const cidr = parseCidr(
          value.includes("/") ? value : `${value}/${value.includes(":") ? 128 : 32}`,
        );
        if (!cidr) throw new Unrepresentable(`${key} ${value}`);
        match[key === "src_ip" ? "srcIp" : "dstIp"] = formatCidr(cidr);
        break;
      }
      case "vlan_id":
        if (typeof value !== "number") throw new Unrepresentable(`vlan_id ${show(value)}`);
        match.vlanId = value;
        break;
      case "dst_port_mask":
        break; // Read with dst_port.
      case "dst_port":
        if (typeof value === "number" && keys.dst_port_mask !== undefined) {
          const mask = typeof keys.dst_port_mask === "string"
            ? parseInt(keys.dst_port_mask, 16)
            : NaN;
          const block = Number.isInteger(mask) ? blockRange(value, mask) : null;
          if (!block || block.first !== value) {
            throw new Unrepresentable(`dst_port ${value}/${show(keys.dst_port_mask)}`);
          }
          match.dstPort = block;
        } else if (typeof value === "number") match.dstPort = { first: value, last: value };
        else if (
          isObject(value) && typeof value.start === "number" && typeof value.end === "number"
        ) {
          match.dstPort = { first: value.start, last: value.end };
        } else throw new Unrepresentable(`dst_port ${show(value)}`);
        break;
      case "ct_state":
        if (typeof value !== "string") throw new Unrepresentable(`ct_state ${value}`);
        match.ctState = value;
        break;
      default:
        throw new Unrepresentable(`key ${key}`);
    }
  }
  return match;
}

function parseAction(raw: Json): TcAction {
  if (!isObject(raw)) throw new Unrepresentable("action");
  const control = isObject(raw.control_action) ? raw.control_action : {};
  if (raw.kind === "gact") {
    if (control.type === "pass") return { kind: "pass" };
    if (control.type === "drop") return { kind: "drop" };
    if (control.type === "goto" && typeof control.chain === "number") {
      return { kind: "goto", chain: control.chain };
    }
    throw new Unrepresentable(`gact ${show(control)}`);
  }
  if (raw.kind === "ct" && control.type === "pipe") {
    const commit = raw.action === "commit";
    if (raw.action !== undefined && !commit) throw new Unrepresentable(`ct ${raw.action}`);
    return { kind: "ct", zone: typeof raw.zone === "number" ? raw.zone : 0, commit };
  }
  throw new Unrepresentable(`action ${show(raw.kind)}`);
}

/** The packets and bytes counted by a filter's first action (`tc -s`), if printed. */
function firstActionCounter(actions: Json[]): FilterCounter | undefined {
  const stats = isObject(actions[0]) ? actions[0].stats : undefined;
  if (!isObject(stats) || typeof stats.packets !== "number" || typeof stats.bytes !== "number") {
    return undefined;
  }
  return { packets: stats.packets, bytes: stats.bytes };
}

/**
 * The first action's cookie as the model's lower-case hex
 * (`tc_print_one_action` prints it as `"cookie"`; a `:` between bytes, as
 * some iproute2 versions' `hexstring_n2a` wrote, is dropped).
 */
function firstActionCookie(actions: Json[]): string | undefined {
  const cookie = isObject(actions[0]) ? actions[0].cookie : undefined;
  return typeof cookie === "string" ? cookie.replaceAll(":", "").toLowerCase() : undefined;
}

/**
 * Where the kernel says a filter is: flower prints `"in_hw": true` with
 * `"in_hw_count"`, or `"not_in_hw": true`, next to `"skip_hw"` in its
 * options; nothing when the kernel did not say.
 */
function filterOffload(options: JsonObject): FilterOffload | undefined {
  if (options.in_hw === true) {
    const count = options.in_hw_count;
    return { inHw: true, inHwCount: typeof count === "number" ? count : 0 };
  }
  if (options.not_in_hw === true) return { inHw: false, inHwCount: 0 };
  return undefined;
}

/**
 * Parses `tc [-s] -json filter show dev DEV HOOK [chain N]`. Without a
 * chain in the command, tc prints each filter's chain; with one, it does
 * not, so `chain` says which one was asked for. With `-s`, the counters of
 * each filter's first action are kept by {@link counterKey}, and so is
 * where the kernel says each filter is (hardware or software only).
 */
export function parseFilterShow(text: string, hook: Hook, chain = 0): ParsedFilters {
  const out: ParsedFilters = { filters: [], foreign: [], counters: new Map(), offload: new Map() };
  const trimmed = text.trim();
  if (trimmed === "") return out;
  const entries: Json = JSON.parse(trimmed);
  if (!Array.isArray(entries)) throw new Error("tc filter show: want a JSON list");
  for (const entry of entries) {
    if (!isObject(entry) || !isObject(entry.options)) continue; // per-prio header lines
    const at = typeof entry.chain === "number" ? entry.chain : chain;
    const where =
      `${hook} chain ${at} prio ${entry.pref} ${entry.kind} handle ${entry.options.handle}`;
    try {
      if (entry.kind !== "flower") throw new Unrepresentable(`kind ${entry.kind}`);
      const protocol = PROTOCOLS[String(entry.protocol).toLowerCase()];
      if (!protocol) throw new Unrepresentable(`protocol ${entry.protocol}`);
      const keys = isObject(entry.options.keys) ? entry.options.keys : {};
      const actions = Array.isArray(entry.options.actions) ? entry.options.actions : [];
      const filter: TcFilter = {
        hook,
        chain: at,
        prio: Number(entry.pref),
        handle: Number(entry.options.handle),
        protocol,
        match: parseMatch(keys),
        actions: actions.map(parseAction),
      };
      const cookie = firstActionCookie(actions);
      if (cookie !== undefined) filter.cookie = cookie;
      if (entry.options.skip_hw === true) filter.skipHw = true;
      out.filters.push(filter);
      const counter = firstActionCounter(actions);
      if (counter) out.counters.set(counterKey(filter), counter);
      const offload = filterOffload(entry.options);
      if (offload) out.offload.set(counterKey(filter), offload);
    } catch (error) {
      if (!(error instanceof Unrepresentable)) throw error;
      out.foreign.push(`${where} (${error.message})`);
    }
  }
  return out;
}

/**
 * Parses `tc -json qdisc show dev DEV`: whether clsact is there (and the
 * shared block its ingress is bound to), whether an `ingress` qdisc is (the
 * Go agent's layout), and the other qdisc kinds.
 */
export function parseQdiscShow(
  text: string,
): { clsact: boolean; ingress: boolean; others: string[]; ingressBlock?: number } {
  const trimmed = text.trim();
  const entries: Json = trimmed === "" ? [] : JSON.parse(trimmed);
  if (!Array.isArray(entries)) throw new Error("tc qdisc show: want a JSON list");
  let clsact = false;
  let ingress = false;
  let ingressBlock: number | undefined;
  const others: string[] = [];
  for (const entry of entries) {
    if (!isObject(entry)) continue;
    if (entry.kind === "clsact" || entry.kind === "ingress") {
      if (entry.kind === "clsact") clsact = true;
      else ingress = true;
      const block = entry.ingress_block;
      if (typeof block === "number" && Number.isInteger(block) && block > 0) ingressBlock = block;
    } else if (typeof entry.kind === "string") others.push(entry.kind);
  }
  return { clsact, ingress, others, ...(ingressBlock === undefined ? {} : { ingressBlock }) };
}
