/**
 * rtnetlink TC dump messages → TC objects (pure): the same filters the
 * `tc -json` parser produces for the same kernel state. What the model
 * cannot represent is described as foreign (reported, never deleted).
 */
import { Unrepresentable } from "../../tc/driver.ts";
import { show } from "../../log/quote.ts";
import { formatIp } from "../../net/ip.ts";
import { blockRange } from "../../tc/ports.ts";
import { cookieText } from "../../tc/cookie.ts";
import type {
  EthProtocol,
  FilterCounter,
  FilterOffload,
  FlowerMatch,
  Hook,
  InnerEthType,
  IpProto,
  TcAction,
  TcFilter,
} from "../../tc/model.ts";
import {
  type Attr,
  attr,
  dataView,
  decodeAttrs,
  NetlinkFormatError,
  type NetlinkMessage,
} from "./wire.ts";
import {
  ACT,
  CLS_FLAGS,
  CLSACT,
  CT,
  CT_STATE_FLAGS,
  ETH_P,
  FLOWER,
  GACT,
  IPPROTO,
  STATS,
  TC_ACT,
  TCA,
  TCM_IFINDEX_MAGIC_BLOCK,
  TCMSG_SIZE,
} from "./tc_constants.ts";

/** The fixed header of a TC message. */
export interface Tcmsg {
  ifindex: number;
  handle: number;
  parent: number;
  info: number;
}

/** Splits a TC message into its tcmsg header and attributes. */
export function decodeTcMessage(message: NetlinkMessage): { tcmsg: Tcmsg; attrs: Attr[] } {
  const view = dataView(message.payload);
  if (message.payload.length < TCMSG_SIZE) {
    throw new NetlinkFormatError("netlink: TC message too short");
  }
  return {
    tcmsg: {
      ifindex: view.getInt32(4, true),
      handle: view.getUint32(8, true),
      parent: view.getUint32(12, true),
      info: view.getUint32(16, true),
    },
    attrs: decodeAttrs(message.payload.subarray(TCMSG_SIZE)),
  };
}

/** A qdisc from a qdisc dump: its device and kind, and the shared block its ingress is bound to. */
export function decodeQdisc(
  message: NetlinkMessage,
): { ifindex: number; kind: string; ingressBlock?: number } {
  const { tcmsg, attrs } = decodeTcMessage(message);
  const kind = attrs.find((a) => a.type === TCA.KIND);
  const block = attrs.find((a) => a.type === TCA.INGRESS_BLOCK);
  const ingressBlock = block ? attr.u32(block) : 0;
  return {
    ifindex: tcmsg.ifindex,
    kind: kind ? attr.string(kind) : "",
    ...(ingressBlock > 0 ? { ingressBlock } : {}),
  };
}

/** A chain id from a chain dump. */
export function decodeChain(message: NetlinkMessage): { ifindex: number; chain: number } {
  const { tcmsg, attrs } = decodeTcMessage(message);
  const chain = attrs.find((a) => a.type === TCA.CHAIN);
  return { ifindex: tcmsg.ifindex, chain: chain ? attr.u32(chain) : 0 };
}

/**
 * The hook a filter's parent names, if it is one of clsact's — or the
 * `ingress` qdisc itself (ffff:0000, how the kernel names the parent of a
 * filter attached to it with `parent ffff:`, as the Go agent does).
 */
export function hookOfParent(parent: number): Hook | undefined {
  if (parent === CLSACT.ingress || parent === CLSACT.handle) return "ingress";
  if (parent === CLSACT.egress) return "egress";
  return undefined;
}

const byValue = <T extends string>(table: Record<string, number>, names: readonly T[]) =>
  new Map<number, T>(names.map((name) => [table[name], name]));

const PROTOCOLS = byValue<EthProtocol>(ETH_P, ["all", "ip", "ipv6", "arp", "802.1q", "802.1ad"]);
const INNER = byValue<InnerEthType>(ETH_P, ["ip", "ipv6", "arp", "802.1q"]);
const IP_PROTOS = byValue<IpProto>(IPPROTO, ["tcp", "udp", "sctp", "icmpv6"]);

function prefixLength(mask: Uint8Array): number {
  let length = 0;
  while (length < mask.length * 8 && mask[length >> 3] & (0x80 >> (length & 7))) length++;
  for (let bit = length; bit < mask.length * 8; bit++) {
    if (mask[bit >> 3] & (0x80 >> (bit & 7))) throw new Unrepresentable("non-prefix mask");
  }
  return length;
}

function prefixText(address: Attr, mask: Attr | undefined): string {
  const size = address.value.length;
  if (size !== 4 && size !== 16) throw new Unrepresentable(`address of ${size} bytes`);
  let value = 0n;
  for (const byte of address.value) value = (value << 8n) | BigInt(byte);
  const length = mask ? prefixLength(mask.value) : size * 8;
  return `${formatIp(size === 4 ? 4 : 6, value)}/${length}`;
}

/** Decodes a ct_state value/mask pair as the model's flag string. */
export function ctStateText(value: number, mask: number): string {
  let text = "";
  let known = 0;
  for (const [name, bit] of CT_STATE_FLAGS) {
    known |= bit;
    if (mask & bit) text += `${value & bit ? "+" : "-"}${name}`;
  }
  if (mask & ~known) throw new Unrepresentable(`ct_state mask 0x${mask.toString(16)}`);
  return text;
}

/** Attributes the kernel adds that carry no match of their own. */
const NO_MATCH = new Set<number>([FLOWER.KEY_ETH_TYPE, FLOWER.FLAGS, FLOWER.IN_HW_COUNT]);

const FULL_MASK: Record<number, number> = {
  [FLOWER.KEY_ICMPV6_TYPE_MASK]: 0xff,
};

/** Port keys and their masks. */
const PORT_MASK: Record<number, number> = {
  [FLOWER.KEY_TCP_DST]: FLOWER.KEY_TCP_DST_MASK,
  [FLOWER.KEY_UDP_DST]: FLOWER.KEY_UDP_DST_MASK,
  [FLOWER.KEY_SCTP_DST]: FLOWER.KEY_SCTP_DST_MASK,
};

function decodeMatch(options: Attr[]): FlowerMatch {
  const match: FlowerMatch = {};
  const byType = new Map(options.map((a) => [a.type, a]));
  for (const a of options) {
    switch (a.type) {
      case FLOWER.ACT:
        break;
      case FLOWER.KEY_VLAN_ETH_TYPE:
      case FLOWER.KEY_CVLAN_ETH_TYPE: {
        const inner = INNER.get(attr.be16(a));
        if (!inner) throw new Unrepresentable(`vlan ethertype 0x${attr.be16(a).toString(16)}`);
        if (a.type === FLOWER.KEY_VLAN_ETH_TYPE) match.vlanEthType = inner;
        else match.cvlanEthType = inner;
        break;
      }
      case FLOWER.KEY_IP_PROTO: {
        const proto = IP_PROTOS.get(attr.u8(a));
        if (!proto) throw new Unrepresentable(`ip_proto ${attr.u8(a)}`);
        match.ipProto = proto;
        break;
      }
      case FLOWER.KEY_ICMPV6_TYPE:
        match.icmpType = attr.u8(a);
        break;
      case FLOWER.KEY_IPV4_SRC:
      case FLOWER.KEY_IPV6_SRC:
        match.srcIp = prefixText(a, byType.get(a.type + 1));
        break;
      case FLOWER.KEY_IPV4_DST:
      case FLOWER.KEY_IPV6_DST:
        match.dstIp = prefixText(a, byType.get(a.type + 1));
        break;
      case FLOWER.KEY_IPV4_SRC_MASK:
      case FLOWER.KEY_IPV4_DST_MASK:
      case FLOWER.KEY_IPV6_SRC_MASK:
      case FLOWER.KEY_IPV6_DST_MASK:
        if (!byType.has(a.type - 1)) throw new Unrepresentable(`mask ${a.type} without a key`);
        break;
      case FLOWER.KEY_TCP_DST:
      case FLOWER.KEY_UDP_DST:
      case FLOWER.KEY_SCTP_DST: {
        const maskAttr = byType.get(PORT_MASK[a.type]);
        const port = attr.be16(a);
        const block = blockRange(port, maskAttr ? attr.be16(maskAttr) : 0xffff);
        if (!block || block.first !== port) throw new Unrepresentable(`masked port ${port}`);
        match.dstPort = block;
        break;
      }
      case FLOWER.KEY_TCP_DST_MASK:
      case FLOWER.KEY_UDP_DST_MASK:
      case FLOWER.KEY_SCTP_DST_MASK:
        if (
          !Object.entries(PORT_MASK).some(([port, mask]) => mask === a.type && byType.has(+port))
        ) {
          throw new Unrepresentable(`port mask ${a.type} without a port`);
        }
        break;
      case FLOWER.KEY_VLAN_ID:
        match.vlanId = attr.u16(a);
        break;
      case FLOWER.KEY_PORT_DST_MIN:
      case FLOWER.KEY_PORT_DST_MAX:
      case FLOWER.KEY_CT_STATE:
      case FLOWER.KEY_CT_STATE_MASK:
        break; // Read in pairs below.
      default: {
        const full = FULL_MASK[a.type];
        if (full !== undefined) {
          const value = a.value.length === 1 ? attr.u8(a) : attr.be16(a);
          if (value !== full) throw new Unrepresentable(`partial mask on key ${a.type}`);
        } else if (!NO_MATCH.has(a.type)) throw new Unrepresentable(`key ${a.type}`);
      }
    }
  }
  const read = (type: number, value: (a: Attr) => number) => {
    const a = byType.get(type);
    return a ? value(a) : undefined;
  };
  const portMin = read(FLOWER.KEY_PORT_DST_MIN, attr.be16);
  const portMax = read(FLOWER.KEY_PORT_DST_MAX, attr.be16);
  const ctState = read(FLOWER.KEY_CT_STATE, attr.u16);
  const ctMask = read(FLOWER.KEY_CT_STATE_MASK, attr.u16);
  if (portMin !== undefined || portMax !== undefined) {
    if (portMin === undefined || portMax === undefined || match.dstPort) {
      throw new Unrepresentable("incomplete port range");
    }
    match.dstPort = { first: portMin, last: portMax };
  }
  if (ctState !== undefined || ctMask !== undefined) {
    match.ctState = ctStateText(ctState ?? 0, ctMask ?? 0);
  }
  return match;
}

function actionParmsControl(a: Attr | undefined): number {
  if (!a || a.value.length < 12) throw new Unrepresentable("action without parameters");
  return dataView(a.value).getInt32(8, true);
}

const IGNORED_ACTION_ATTRS = new Set<number>([
  ACT.INDEX,
  ACT.STATS,
  ACT.PAD,
  ACT.COOKIE,
  ACT.FLAGS,
  ACT.HW_STATS,
  ACT.USED_HW_STATS,
  ACT.IN_HW_COUNT,
]);

function decodeAction(nest: Attr): TcAction {
  let kind = "";
  let options: Attr[] = [];
  for (const a of decodeAttrs(nest.value)) {
    if (a.type === ACT.KIND) kind = attr.string(a);
    else if (a.type === ACT.OPTIONS) options = decodeAttrs(a.value);
    else if (!IGNORED_ACTION_ATTRS.has(a.type)) throw new Unrepresentable(`action attr ${a.type}`);
  }
  const byType = new Map(options.map((a) => [a.type, a]));
  if (kind === "gact") {
    for (const a of options) {
      if (a.type !== GACT.PARMS && a.type !== GACT.TM && a.type !== GACT.PAD) {
        throw new Unrepresentable(`gact attr ${a.type}`);
      }
    }
    const control = actionParmsControl(byType.get(GACT.PARMS)) >>> 0;
    if (control === TC_ACT.OK) return { kind: "pass" };
    if (control === TC_ACT.SHOT) return { kind: "drop" };
    if ((control & TC_ACT.OPCODE_MASK) >>> 0 === TC_ACT.GOTO_CHAIN) {
      return { kind: "goto", chain: control & TC_ACT.VALUE_MASK };
    }
    throw new Unrepresentable(`gact control 0x${control.toString(16)}`);
  }
  if (kind === "ct") {
    for (const a of options) {
      if (![CT.PARMS, CT.TM, CT.ACTION, CT.ZONE, CT.PAD].includes(a.type as 1)) {
        throw new Unrepresentable(`ct attr ${a.type}`);
      }
    }
    if (actionParmsControl(byType.get(CT.PARMS)) !== TC_ACT.PIPE) {
      throw new Unrepresentable("ct not followed by pipe");
    }
    const flagsAttr = byType.get(CT.ACTION);
    const flags = flagsAttr ? attr.u16(flagsAttr) : 0;
    if (flags !== 0 && flags !== CT.ACT_COMMIT) throw new Unrepresentable(`ct flags ${flags}`);
    const zone = byType.get(CT.ZONE);
    return { kind: "ct", zone: zone ? attr.u16(zone) : 0, commit: flags === CT.ACT_COMMIT };
  }
  throw new Unrepresentable(`action ${show(kind)}`);
}

/**
 * The packets and bytes an action has counted: `TCA_STATS_BASIC` in its
 * `TCA_ACT_STATS` (struct gnet_stats_basic: u64 bytes, u32 packets).
 */
function actionCounter(nest: Attr): FilterCounter | undefined {
  const stats = decodeAttrs(nest.value).find((a) => a.type === ACT.STATS);
  const basic = stats && decodeAttrs(stats.value).find((a) => a.type === STATS.BASIC);
  if (!basic || basic.value.length < 12) return undefined;
  const view = dataView(basic.value);
  return { bytes: Number(view.getBigUint64(0, true)), packets: view.getUint32(8, true) };
}

/** An action's cookie (`TCA_ACT_COOKIE`), as the model's lower-case hex. */
function actionCookie(nest: Attr): string | undefined {
  const cookie = decodeAttrs(nest.value).find((a) => a.type === ACT.COOKIE);
  return cookie ? cookieText(cookie.value) : undefined;
}

/**
 * The flower flags and where the kernel says the filter is: `fl_dump` sends
 * `TCA_FLOWER_FLAGS` when any is set (`fl_change` adds IN_HW or NOT_IN_HW to
 * what was asked for) and always `TCA_FLOWER_IN_HW_COUNT`.
 */
function flowerFlags(flower: Attr[]): { skipHw: boolean; offload?: FilterOffload } {
  const flagsAttr = flower.find((a) => a.type === FLOWER.FLAGS);
  const countAttr = flower.find((a) => a.type === FLOWER.IN_HW_COUNT);
  const flags = flagsAttr ? attr.u32(flagsAttr) : 0;
  const skipHw = (flags & CLS_FLAGS.SKIP_HW) !== 0;
  if (flags & CLS_FLAGS.IN_HW) {
    return { skipHw, offload: { inHw: true, inHwCount: countAttr ? attr.u32(countAttr) : 0 } };
  }
  if (flags & CLS_FLAGS.NOT_IN_HW) return { skipHw, offload: { inHw: false, inHwCount: 0 } };
  return { skipHw };
}

/**
 * One entry of a filter dump: a filter (with its first action's counter
 * and where the kernel says it is, when the kernel sent them), a foreign
 * description, or nothing (a per-prio header).
 */
export type DecodedFilter =
  | { filter: TcFilter; counter?: FilterCounter; offload?: FilterOffload }
  | { foreign: string }
  | null;

/** Decodes one RTM_NEWTFILTER message of a dump. */
export function decodeFilter(message: NetlinkMessage): DecodedFilter {
  const { tcmsg, attrs } = decodeTcMessage(message);
  // A shared block's filter names the block (magic ifindex, index as parent): all are ingress.
  const hook = tcmsg.ifindex >>> 0 === TCM_IFINDEX_MAGIC_BLOCK
    ? "ingress"
    : hookOfParent(tcmsg.parent);
  const options = attrs.find((a) => a.type === TCA.OPTIONS);
  if (!options) return null; // per-prio header, no filter of its own
  const chainAttr = attrs.find((a) => a.type === TCA.CHAIN);
  const chain = chainAttr ? attr.u32(chainAttr) : 0;
  const kindAttr = attrs.find((a) => a.type === TCA.KIND);
  const kind = kindAttr ? attr.string(kindAttr) : "?";
  const prio = tcmsg.info >>> 16;
  const protocolValue = ((tcmsg.info & 0xff) << 8) | ((tcmsg.info >> 8) & 0xff);
  const where = `${hook ?? `parent ${tcmsg.parent.toString(16)}`} chain ${chain} prio ${prio} ` +
    `${kind} handle ${tcmsg.handle}`;
  try {
    if (!hook) throw new Unrepresentable(`parent 0x${tcmsg.parent.toString(16)}`);
    if (kind !== "flower") throw new Unrepresentable(`kind ${kind}`);
    const protocol = PROTOCOLS.get(protocolValue);
    if (!protocol) throw new Unrepresentable(`protocol 0x${protocolValue.toString(16)}`);
    const flower = decodeAttrs(options.value);
    const actions = flower.find((a) => a.type === FLOWER.ACT);
    const nests = actions ? decodeAttrs(actions.value) : [];
    const filter: TcFilter = {
      hook,
      chain,
      prio,
      handle: tcmsg.handle,
      protocol,
      match: decodeMatch(flower),
      actions: nests.map(decodeAction),
    };
    const cookie = nests.length > 0 ? actionCookie(nests[0]) : undefined;
    if (cookie !== undefined) filter.cookie = cookie;
    // IN_HW and NOT_IN_HW say where the filter is, not what was asked for: never in the filter.
    const { skipHw, offload } = flowerFlags(flower);
    if (skipHw) filter.skipHw = true;
    const counter = nests.length > 0 ? actionCounter(nests[0]) : undefined;
    const out: DecodedFilter = { filter };
    if (counter) out.counter = counter;
    if (offload) out.offload = offload;
    return out;
  } catch (error) {
    if (!(error instanceof Unrepresentable)) throw error;
    return { foreign: `${where} (${error.message})` };
  }
}
