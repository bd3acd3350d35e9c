/**
 * TC objects → rtnetlink requests (pure). The bytes are those `tc` itself
 * sends for the command the serializer writes for the same object
 * (attribute order included), so a filter means the same to the kernel
 * whichever driver programmed it. Every number is range-checked first.
 */
import { type Cidr, parseCidr } from "../../net/ip.ts";
import type { FlowerMatch, Hook, TcAction, TcCommand, TcFilter } from "../../tc/model.ts";
import { UnsafeTcInput } from "../../tc/serialize.ts";
import { AttrWriter, type NetlinkRequest, NL } from "./wire.ts";
import {
  ACT,
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

interface Tcmsg {
  ifindex: number;
  handle?: number;
  parent?: number;
  info?: number;
}

function request(type: number, flags: number, tcmsg: Tcmsg, attrs?: AttrWriter): NetlinkRequest {
  const tail = attrs?.finish() ?? new Uint8Array();
  const body = new Uint8Array(TCMSG_SIZE + tail.length);
  const view = new DataView(body.buffer);
  view.setInt32(4, tcmsg.ifindex, true);
  view.setUint32(8, tcmsg.handle ?? 0, true);
  view.setUint32(12, tcmsg.parent ?? 0, true);
  view.setUint32(16, tcmsg.info ?? 0, true);
  body.set(tail, TCMSG_SIZE);
  return { type, flags, body };
}

const CREATE_EXCL = NL.F_REQUEST | NL.F_CREATE | NL.F_EXCL;
const DUMP = NL.F_REQUEST | NL.F_DUMP;

/** `qdisc add|del dev D clsact`. */
export function clsactRequest(verb: "add" | "del", ifindex: number): NetlinkRequest {
  return request(
    verb === "add" ? RTM.NEWQDISC : RTM.DELQDISC,
    verb === "add" ? CREATE_EXCL : NL.F_REQUEST,
    { ifindex, handle: CLSACT.handle, parent: CLSACT.parent },
    new AttrWriter().string(TCA.KIND, "clsact"),
  );
}

/** `qdisc show dev D` (the kernel may answer with other devices' qdiscs too). */
export function qdiscDumpRequest(ifindex: number): NetlinkRequest {
  return request(RTM.GETQDISC, DUMP, { ifindex });
}

/** `chain add|del dev D HOOK chain N`. */
export function chainRequest(
  verb: "add" | "del",
  ifindex: number,
  hook: Hook,
  chain: number,
): NetlinkRequest {
  return request(
    verb === "add" ? RTM.NEWCHAIN : RTM.DELCHAIN,
    verb === "add" ? CREATE_EXCL : NL.F_REQUEST,
    { ifindex, parent: hookParent(hook) },
    new AttrWriter().u32(TCA.CHAIN, checked("chain", chain, 0xffffffff)),
  );
}

/** `chain show dev D HOOK`. */
export function chainDumpRequest(ifindex: number, hook: Hook): NetlinkRequest {
  return request(RTM.GETCHAIN, DUMP, { ifindex, parent: hookParent(hook) });
}

/** `filter show dev D HOOK [chain N]`: every chain of the hook when `chain` is absent. */
export function filterDumpRequest(ifindex: number, hook: Hook, chain?: number): NetlinkRequest {
  const attrs = chain === undefined
    ? undefined
    : new AttrWriter().u32(TCA.CHAIN, checked("chain", chain, 0xffffffff));
  return request(RTM.GETTFILTER, DUMP, { ifindex, parent: hookParent(hook) }, attrs);
}

function ethType(protocol: string): number {
  const value = ETH_P[protocol];
  if (value === undefined) throw new UnsafeTcInput(`unknown protocol ${JSON.stringify(protocol)}`);
  return value;
}

function filterTcmsg(ifindex: number, filter: TcFilter): Tcmsg {
  const prio = checked("prio", filter.prio, 0xffff, 1);
  const protocol = ethType(filter.protocol);
  // tcm_info: prio in the upper half, the protocol in network order in the lower.
  const info = (prio * 0x10000 + ((protocol & 0xff) << 8 | protocol >> 8)) >>> 0;
  return {
    ifindex,
    handle: checked("handle", filter.handle, 0xffffffff),
    parent: hookParent(filter.hook),
    info,
  };
}

function addressBytes(cidr: Cidr): { address: Uint8Array; mask: Uint8Array } {
  const size = cidr.family === 4 ? 4 : 16;
  const address = new Uint8Array(size);
  const mask = new Uint8Array(size);
  let value = cidr.base;
  for (let i = size - 1; i >= 0; i--) {
    address[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  for (let bit = 0; bit < cidr.prefix; bit++) mask[bit >> 3] |= 0x80 >> (bit & 7);
  return { address, mask };
}

function writeAddress(attrs: AttrWriter, text: string, source: boolean, protocol: string): void {
  const cidr = parseCidr(text);
  if (!cidr) throw new UnsafeTcInput(`invalid prefix ${JSON.stringify(text)}`);
  const { address, mask } = addressBytes(cidr);
  const types = cidr.family === 4
    ? source
      ? [FLOWER.KEY_IPV4_SRC, FLOWER.KEY_IPV4_SRC_MASK]
      : [FLOWER.KEY_IPV4_DST, FLOWER.KEY_IPV4_DST_MASK]
    : source
    ? [FLOWER.KEY_IPV6_SRC, FLOWER.KEY_IPV6_SRC_MASK]
    : [FLOWER.KEY_IPV6_DST, FLOWER.KEY_IPV6_DST_MASK];
  if (protocol !== (cidr.family === 4 ? "ip" : "ipv6")) {
    throw new UnsafeTcInput(`prefix ${text} does not match ethertype ${protocol}`);
  }
  attrs.bytes(types[0], address).bytes(types[1], mask);
}

/** Encodes a ct_state flag string (`+trk+est`, `-rpl`...) as value and mask. */
export function ctStateBits(text: string): { value: number; mask: number } {
  let value = 0;
  let mask = 0;
  const re = /([+-])([a-z]{3})/y;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    const flag = m && CT_STATE_FLAGS.find(([name]) => name === m[2]);
    if (!m || !flag) throw new UnsafeTcInput(`invalid ct_state ${JSON.stringify(text)}`);
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

function writeKeys(attrs: AttrWriter, filter: TcFilter): void {
  const match: FlowerMatch = filter.match;
  if (match.vlanEthType) attrs.be16(FLOWER.KEY_VLAN_ETH_TYPE, ethType(match.vlanEthType));
  if (match.cvlanEthType) attrs.be16(FLOWER.KEY_CVLAN_ETH_TYPE, ethType(match.cvlanEthType));
  if (match.ipProto) {
    const proto = IPPROTO[match.ipProto];
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
    if (first === last) {
      const types: Record<string, number> = {
        tcp: FLOWER.KEY_TCP_DST,
        udp: FLOWER.KEY_UDP_DST,
        sctp: FLOWER.KEY_SCTP_DST,
      };
      const type = match.ipProto && types[match.ipProto];
      if (!type) throw new UnsafeTcInput("dst_port without ip_proto tcp, udp or sctp");
      attrs.be16(type, first);
    } else {
      attrs.be16(FLOWER.KEY_PORT_DST_MIN, first).be16(FLOWER.KEY_PORT_DST_MAX, last);
    }
  }
  if (match.ctState) {
    const { value, mask } = ctStateBits(match.ctState);
    attrs.u16(FLOWER.KEY_CT_STATE, value).u16(FLOWER.KEY_CT_STATE_MASK, mask);
  }
}

/** struct tc_gact / tc_ct: index, capab, action, refcnt, bindcnt. */
function actionParms(control: number): Uint8Array {
  const parms = new Uint8Array(20);
  new DataView(parms.buffer).setInt32(8, control, true);
  return parms;
}

function writeAction(attrs: AttrWriter, order: number, action: TcAction): void {
  attrs.begin(order);
  if (action.kind === "ct") {
    attrs.string(ACT.KIND, "ct").begin(ACT.OPTIONS | NL.ATTR_NESTED);
    const zone = checked("zone", action.zone, 0xffff);
    if (zone !== 0) attrs.u16(CT.ZONE, zone);
    attrs.u16(CT.ACTION, action.commit ? CT.ACT_COMMIT : 0);
    attrs.bytes(CT.PARMS, actionParms(TC_ACT.PIPE)).end();
  } else {
    const control = action.kind === "pass"
      ? TC_ACT.OK
      : action.kind === "drop"
      ? TC_ACT.SHOT
      : (TC_ACT.GOTO_CHAIN | checked("goto chain", action.chain, TC_ACT.VALUE_MASK)) >>> 0;
    attrs.string(ACT.KIND, "gact").begin(ACT.OPTIONS | NL.ATTR_NESTED);
    attrs.bytes(GACT.PARMS, actionParms(control)).end();
  }
  attrs.end();
}

function filterAttrs(filter: TcFilter, withMatch: boolean): AttrWriter {
  const attrs = new AttrWriter()
    .u32(TCA.CHAIN, checked("chain", filter.chain, 0xffffffff))
    .string(TCA.KIND, "flower")
    .begin(TCA.OPTIONS);
  if (withMatch) {
    writeKeys(attrs, filter);
    if (filter.actions.length > 0) {
      attrs.begin(FLOWER.ACT);
      filter.actions.forEach((action, i) => writeAction(attrs, i + 1, action));
      attrs.end();
    }
  }
  attrs.u32(FLOWER.FLAGS, 0);
  if (filter.protocol !== "all") attrs.be16(FLOWER.KEY_ETH_TYPE, ethType(filter.protocol));
  return attrs.end();
}

/** `filter add|replace dev D ... flower KEYS ACTIONS`. */
export function filterRequest(
  verb: "add" | "replace",
  ifindex: number,
  filter: TcFilter,
): NetlinkRequest {
  return request(
    RTM.NEWTFILTER,
    verb === "add" ? CREATE_EXCL : NL.F_REQUEST | NL.F_CREATE,
    filterTcmsg(ifindex, filter),
    filterAttrs(filter, true),
  );
}

/** `filter del dev D HOOK protocol P prio N handle H chain C flower`. */
export function filterDeleteRequest(ifindex: number, filter: TcFilter): NetlinkRequest {
  return request(
    RTM.DELTFILTER,
    NL.F_REQUEST,
    filterTcmsg(ifindex, filter),
    filterAttrs(filter, false),
  );
}

/** The request for one actuator command (no ACK flag: the sender adds it where it waits). */
export function commandRequest(ifindex: number, command: TcCommand): NetlinkRequest {
  switch (command.op) {
    case "qdisc-add":
      return clsactRequest("add", ifindex);
    case "qdisc-del":
      return clsactRequest("del", ifindex);
    case "filter-add":
      return filterRequest("add", ifindex, command.filter);
    case "filter-replace":
      return filterRequest("replace", ifindex, command.filter);
    case "filter-del":
      return filterDeleteRequest(ifindex, command.filter);
    case "chain-del":
      return chainRequest("del", ifindex, command.hook, command.chain);
  }
}
