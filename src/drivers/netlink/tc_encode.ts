/**
 * TC objects → rtnetlink requests (pure). The bytes are those `tc` itself
 * sends for the command the serializer writes for the same object
 * (attribute order included), so a filter means the same to the kernel
 * whichever driver programmed it. Every number is range-checked first.
 */
import { show } from "../../log/quote.ts";
import { parseCidr } from "../../net/ip.ts";
import type { FlowerMatch, Hook, TcAction, TcCommand, TcFilter } from "../../tc/model.ts";
import { UnsafeTcInput } from "../../tc/serialize.ts";
import { blockMask } from "../../tc/ports.ts";
import { cookieBytes } from "../../tc/cookie.ts";
import { type NetlinkRequest, NetlinkWriter, NL, onlyRequest } from "./wire.ts";
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
  RTM,
  TC_ACT,
  TCA,
  TCM_IFINDEX_MAGIC_BLOCK,
  TCMSG_SIZE,
} from "./tc_constants.ts";

/** The clsact parent of a hook. */
export function hookParent(hook: Hook): number {
  return hook === "ingress" ? CLSACT.ingress : CLSACT.egress;
}

function checked(name: string, value: number, max: number, min = 0): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UnsafeTcInput(`${name} ${value} is out of range ${min}-${max}`);
  }
  return value;
}

/** Where a request points: a netdev by its ifindex, or a shared block by its index. */
export type TcTarget = number | { block: number };

function targetIndex(target: TcTarget): number {
  return typeof target === "number" ? target : TCM_IFINDEX_MAGIC_BLOCK;
}

/** The parent of a hook's filters: the clsact hook, or for a shared block its index. */
function targetParent(target: TcTarget, hook: Hook): number {
  if (typeof target === "number") return hookParent(hook);
  return checked("block", target.block, 0xffffffff, 1);
}

/** Starts a TC message (nlmsghdr + tcmsg); the caller writes attributes and ends it. */
function startTc(
  w: NetlinkWriter,
  type: number,
  flags: number,
  seq: number,
  ifindex: number,
  parent: number,
  handle = 0,
  info = 0,
): NetlinkWriter {
  const at = w.startMessage(type, flags, seq, TCMSG_SIZE);
  return w.setU32(at + 4, ifindex).setU32(at + 8, handle).setU32(at + 12, parent)
    .setU32(at + 16, info);
}

/** Runs `write` on a fresh writer and returns the one message it wrote, as a request. */
function single(write: (w: NetlinkWriter) => void): NetlinkRequest {
  const w = new NetlinkWriter();
  write(w);
  return onlyRequest(w);
}

const CREATE_EXCL = NL.F_REQUEST | NL.F_CREATE | NL.F_EXCL;
const DUMP = NL.F_REQUEST | NL.F_DUMP;

function writeClsact(
  w: NetlinkWriter,
  verb: "add" | "del",
  target: TcTarget,
  seq: number,
  kind: "clsact" | "ingress" = "clsact",
  block?: number,
): void {
  if (typeof target !== "number") throw new UnsafeTcInput("a shared block has no qdisc of its own");
  startTc(
    w,
    verb === "add" ? RTM.NEWQDISC : RTM.DELQDISC,
    verb === "add" ? CREATE_EXCL : NL.F_REQUEST,
    seq,
    target,
    CLSACT.parent,
    CLSACT.handle,
  ).string(TCA.KIND, kind);
  if (block !== undefined) w.u32(TCA.INGRESS_BLOCK, checked("block", block, 0xffffffff, 1));
  w.endMessage();
}

function writeChain(
  w: NetlinkWriter,
  verb: "add" | "del",
  target: TcTarget,
  hook: Hook,
  chain: number,
  seq: number,
): void {
  startTc(
    w,
    verb === "add" ? RTM.NEWCHAIN : RTM.DELCHAIN,
    verb === "add" ? CREATE_EXCL : NL.F_REQUEST,
    seq,
    targetIndex(target),
    targetParent(target, hook),
  ).u32(TCA.CHAIN, checked("chain", chain, 0xffffffff)).endMessage();
}

/** `qdisc show dev D` (the kernel may answer with other devices' qdiscs too). */
export function qdiscDumpRequest(ifindex: number): NetlinkRequest {
  return single((w) => startTc(w, RTM.GETQDISC, DUMP, 0, ifindex, 0).endMessage());
}

/** `chain add|del dev D HOOK chain N`. */
export function chainRequest(
  verb: "add" | "del",
  target: TcTarget,
  hook: Hook,
  chain: number,
): NetlinkRequest {
  return single((w) => writeChain(w, verb, target, hook, chain, 0));
}

/** `chain show dev D HOOK` (or `block N`). */
export function chainDumpRequest(target: TcTarget, hook: Hook): NetlinkRequest {
  return single((w) =>
    startTc(w, RTM.GETCHAIN, DUMP, 0, targetIndex(target), targetParent(target, hook)).endMessage()
  );
}

/**
 * `filter show dev D HOOK [chain N]` (or `block N`): every chain of the
 * hook when `chain` is absent.
 */
export function filterDumpRequest(target: TcTarget, hook: Hook, chain?: number): NetlinkRequest {
  return single((w) => {
    startTc(w, RTM.GETTFILTER, DUMP, 0, targetIndex(target), targetParent(target, hook));
    if (chain !== undefined) w.u32(TCA.CHAIN, checked("chain", chain, 0xffffffff));
    w.endMessage();
  });
}

function ethType(protocol: string): number {
  const value = Object.hasOwn(ETH_P, protocol) ? ETH_P[protocol] : undefined;
  if (value === undefined) throw new UnsafeTcInput(`unknown protocol ${show(protocol)}`);
  return value;
}

/** tcm_info of a filter: prio in the upper half, the protocol in network order in the lower. */
function filterInfo(filter: TcFilter): number {
  const prio = checked("prio", filter.prio, 0xffff, 1);
  const protocol = ethType(filter.protocol);
  return (prio * 0x10000 + (((protocol & 0xff) << 8) | (protocol >> 8))) >>> 0;
}

const DOT = 46;
const SLASH = 47;

/**
 * Reads a plain `a.b.c.d/len` into `out` (base with host bits cleared,
 * mask); false when the text is not that form. No regex and no allocation:
 * this runs once per address of every filter.
 */
function ipv4Prefix(text: string, out: { base: number; mask: number }): boolean {
  let value = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  let i = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return false; // no leading zeros, as inet_pton
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return false;
    } else if ((c === DOT && parts < 3) || (c === SLASH && parts === 3)) {
      if (digits === 0) return false;
      value = value * 256 + part;
      parts++;
      part = 0;
      digits = 0;
      if (c === SLASH) break;
    } else return false;
  }
  if (parts !== 4 || i === text.length) return false;
  let length = 0;
  for (i++, digits = 0; i < text.length; i++, digits++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57 || digits >= 2) return false;
    length = length * 10 + (c - 48);
  }
  if (digits === 0 || length > 32) return false;
  out.mask = length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0;
  out.base = (value & out.mask) >>> 0;
  return true;
}

const parsedV4 = { base: 0, mask: 0 };

function writeAddress(attrs: NetlinkWriter, text: string, source: boolean, protocol: string): void {
  const family = text.includes(":") ? 6 : 4;
  if (protocol !== (family === 4 ? "ip" : "ipv6")) {
    throw new UnsafeTcInput(`prefix ${text} does not match ethertype ${protocol}`);
  }
  const [key, maskKey] = family === 4
    ? source
      ? [FLOWER.KEY_IPV4_SRC, FLOWER.KEY_IPV4_SRC_MASK]
      : [FLOWER.KEY_IPV4_DST, FLOWER.KEY_IPV4_DST_MASK]
    : source
    ? [FLOWER.KEY_IPV6_SRC, FLOWER.KEY_IPV6_SRC_MASK]
    : [FLOWER.KEY_IPV6_DST, FLOWER.KEY_IPV6_DST_MASK];
  if (family === 4 && ipv4Prefix(text, parsedV4)) {
    attrs.be32(key, parsedV4.base).be32(maskKey, parsedV4.mask);
    return;
  }
  const cidr = parseCidr(text);
  if (!cidr || cidr.family !== family) {
    throw new UnsafeTcInput(`invalid prefix ${show(text)}`);
  }
  const size = family === 4 ? 4 : 16;
  const address = new Uint8Array(size);
  let value = cidr.base;
  for (let i = size - 1; i >= 0; i--, value >>= 8n) address[i] = Number(value & 0xffn);
  const mask = new Uint8Array(size);
  for (let bit = 0; bit < cidr.prefix; bit++) mask[bit >> 3] |= 0x80 >> (bit & 7);
  attrs.bytes(key, address).bytes(maskKey, mask);
}

const ctStateCache = new Map<string, { value: number; mask: number }>();

/** Encodes a ct_state flag string (`+trk+est`, `-rpl`...) as value and mask. */
export function ctStateBits(text: string): { value: number; mask: number } {
  let bits = ctStateCache.get(text);
  if (!bits) {
    bits = parseCtState(text);
    if (ctStateCache.size < 64) ctStateCache.set(text, bits);
  }
  return bits;
}

function parseCtState(text: string): { value: number; mask: number } {
  let value = 0;
  let mask = 0;
  const re = /([+-])([a-z]{3})/y;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    const flag = m && CT_STATE_FLAGS.find(([name]) => name === m[2]);
    if (!m || !flag) throw new UnsafeTcInput(`invalid ct_state ${show(text)}`);
    mask |= flag[1];
    if (m[1] === "+") value |= flag[1];
    at = re.lastIndex;
  }
  if (mask === 0) throw new UnsafeTcInput("empty ct_state");
  return { value, mask };
}

/** The ethertype the IP keys apply to: the innermost one named. */
function innerProtocol(filter: TcFilter): string {
  return filter.match.cvlanEthType ?? filter.match.vlanEthType ?? filter.protocol;
}

function writeKeys(attrs: NetlinkWriter, filter: TcFilter): void {
  const match: FlowerMatch = filter.match;
  if (match.vlanId !== undefined) {
    attrs.u16(FLOWER.KEY_VLAN_ID, checked("vlan id", match.vlanId, 4094, 1));
  }
  if (match.vlanEthType) attrs.be16(FLOWER.KEY_VLAN_ETH_TYPE, ethType(match.vlanEthType));
  if (match.cvlanEthType) attrs.be16(FLOWER.KEY_CVLAN_ETH_TYPE, ethType(match.cvlanEthType));
  if (match.ipProto) {
    const proto = Object.hasOwn(IPPROTO, match.ipProto) ? IPPROTO[match.ipProto] : undefined;
    if (proto === undefined) throw new UnsafeTcInput(`unknown ip_proto ${match.ipProto}`);
    attrs.u8(FLOWER.KEY_IP_PROTO, proto);
  }
  if (match.icmpType !== undefined) {
    if (match.ipProto !== "icmpv6") throw new UnsafeTcInput("icmp type without ip_proto icmpv6");
    attrs.u8(FLOWER.KEY_ICMPV6_TYPE, checked("icmp type", match.icmpType, 255));
    attrs.u8(FLOWER.KEY_ICMPV6_TYPE_MASK, 0xff);
  }
  const protocol = innerProtocol(filter);
  if (match.srcIp) writeAddress(attrs, match.srcIp, true, protocol);
  if (match.dstIp) writeAddress(attrs, match.dstIp, false, protocol);
  if (match.dstPort) {
    const first = checked("port", match.dstPort.first, 0xffff, 1);
    const last = checked("port", match.dstPort.last, 0xffff, first);
    // An aligned block (a single port included) is a masked port, which a NIC can offload.
    const mask = blockMask({ first, last });
    if (mask !== null) {
      const types: Record<string, [number, number]> = {
        tcp: [FLOWER.KEY_TCP_DST, FLOWER.KEY_TCP_DST_MASK],
        udp: [FLOWER.KEY_UDP_DST, FLOWER.KEY_UDP_DST_MASK],
        sctp: [FLOWER.KEY_SCTP_DST, FLOWER.KEY_SCTP_DST_MASK],
      };
      const type = match.ipProto && types[match.ipProto];
      if (!type) throw new UnsafeTcInput("dst_port without ip_proto tcp, udp or sctp");
      attrs.be16(type[0], first);
      if (mask !== 0xffff) attrs.be16(type[1], mask); // tc sends no mask for a single port
    } else {
      attrs.be16(FLOWER.KEY_PORT_DST_MIN, first).be16(FLOWER.KEY_PORT_DST_MAX, last);
    }
  }
  if (match.ctState) {
    const { value, mask } = ctStateBits(match.ctState);
    attrs.u16(FLOWER.KEY_CT_STATE, value).u16(FLOWER.KEY_CT_STATE_MASK, mask);
  }
}

/** struct tc_gact / tc_ct: index, capab, action, refcnt, bindcnt (only the action set). */
function writeParms(attrs: NetlinkWriter, type: number, control: number): NetlinkWriter {
  return attrs.struct(type, 20, (view, at) => view.setInt32(at + 8, control, true));
}

/**
 * One action's nest: kind, options, then the cookie when there is one, in
 * the order iproute2's `parse_action` writes them.
 */
function writeAction(
  attrs: NetlinkWriter,
  order: number,
  action: TcAction,
  cookie?: Uint8Array,
): void {
  attrs.begin(order);
  if (action.kind === "ct") {
    attrs.string(ACT.KIND, "ct").begin(ACT.OPTIONS | NL.ATTR_NESTED);
    const zone = checked("zone", action.zone, 0xffff);
    if (zone !== 0) attrs.u16(CT.ZONE, zone);
    attrs.u16(CT.ACTION, action.commit ? CT.ACT_COMMIT : 0);
    writeParms(attrs, CT.PARMS, TC_ACT.PIPE).end();
  } else {
    const control = action.kind === "pass"
      ? TC_ACT.OK
      : action.kind === "drop"
      ? TC_ACT.SHOT
      : (TC_ACT.GOTO_CHAIN | checked("goto chain", action.chain, TC_ACT.VALUE_MASK)) >>> 0;
    attrs.string(ACT.KIND, "gact").begin(ACT.OPTIONS | NL.ATTR_NESTED);
    writeParms(attrs, GACT.PARMS, control).end();
  }
  if (cookie) attrs.bytes(ACT.COOKIE, cookie);
  attrs.end();
}

/** The last cookie encoded: every filter of the agent carries the same one. */
let lastCookie: { text: string; bytes: Uint8Array } | undefined;

/** A cookie's bytes (checked), reusing the last ones when the text is the same. */
function encodedCookie(text: string): Uint8Array {
  if (lastCookie?.text !== text) lastCookie = { text, bytes: cookieBytes(text) };
  return lastCookie.bytes;
}

function writeFilter(
  w: NetlinkWriter,
  type: number,
  flags: number,
  target: TcTarget,
  filter: TcFilter,
  seq: number,
): void {
  const handle = checked("handle", filter.handle, 0xffffffff);
  // A delete names the filter only; tc still sends its flags (none) and ethertype.
  const full = type === RTM.NEWTFILTER;
  const cookie = full && filter.cookie !== undefined ? encodedCookie(filter.cookie) : undefined;
  if (cookie && filter.actions.length === 0) {
    throw new UnsafeTcInput("a tc cookie needs an action to carry it");
  }
  const parent = targetParent(target, filter.hook);
  startTc(w, type, flags, seq, targetIndex(target), parent, handle, filterInfo(filter))
    .u32(TCA.CHAIN, checked("chain", filter.chain, 0xffffffff))
    .string(TCA.KIND, "flower")
    .begin(TCA.OPTIONS);
  if (full) {
    writeKeys(w, filter);
    if (filter.actions.length > 0) {
      w.begin(FLOWER.ACT);
      for (let i = 0; i < filter.actions.length; i++) {
        writeAction(w, i + 1, filter.actions[i], i === 0 ? cookie : undefined);
      }
      w.end();
    }
  }
  // tc writes the flags after the actions (`skip_hw` is the only one the model sets).
  w.u32(FLOWER.FLAGS, full && filter.skipHw ? CLS_FLAGS.SKIP_HW : 0);
  if (filter.protocol !== "all") w.be16(FLOWER.KEY_ETH_TYPE, ethType(filter.protocol));
  w.end().endMessage();
}

const FILTER_FLAGS = {
  add: CREATE_EXCL,
  replace: NL.F_REQUEST | NL.F_CREATE,
} as const;

/**
 * Appends the message for one actuator command to `w` (without the ACK
 * flag: the sender adds it where it waits).
 */
export function writeCommand(
  w: NetlinkWriter,
  ifindex: TcTarget,
  command: TcCommand,
  seq: number,
): void {
  switch (command.op) {
    case "qdisc-add":
    case "qdisc-del":
      return command.op === "qdisc-add"
        ? writeClsact(w, "add", ifindex, seq, "clsact", command.block)
        : writeClsact(w, "del", ifindex, seq, command.kind);
    case "filter-add":
      return writeFilter(w, RTM.NEWTFILTER, FILTER_FLAGS.add, ifindex, command.filter, seq);
    case "filter-replace":
      return writeFilter(w, RTM.NEWTFILTER, FILTER_FLAGS.replace, ifindex, command.filter, seq);
    case "filter-del":
      return writeFilter(w, RTM.DELTFILTER, NL.F_REQUEST, ifindex, command.filter, seq);
    case "chain-del":
      return writeChain(w, "del", ifindex, command.hook, command.chain, seq);
  }
}

/** The request for one actuator command, on its own. */
export function commandRequest(ifindex: TcTarget, command: TcCommand): NetlinkRequest {
  return single((w) => writeCommand(w, ifindex, command, 0));
}
