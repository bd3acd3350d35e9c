/**
 * Reading Protocol Buffers wire format: just enough to walk the fields of
 * the kubelet's PodResources answers (strings and nested messages), skipping
 * every field it does not ask for. Malformed input is an error, never a hang.
 */

/** One field of a message: its number, wire type and raw value. */
export interface ProtoField {
  number: number;
  wireType: number;
  /** The bytes of a length-delimited field (strings, bytes, messages). */
  bytes?: Uint8Array;
}

/** A message that does not parse as protobuf wire format. */
export class ProtoFormatError extends Error {
  override name = "ProtoFormatError";
}

function varint(data: Uint8Array, at: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = at; i < data.length && i < at + 10; i++) {
    value += (data[i] & 0x7f) * scale;
    scale *= 128;
    if ((data[i] & 0x80) === 0) return [value, i + 1];
  }
  throw new ProtoFormatError(`truncated varint at offset ${at}`);
}

/** The fields of one message, in order. */
export function fields(data: Uint8Array): ProtoField[] {
  const out: ProtoField[] = [];
  let at = 0;
  while (at < data.length) {
    const [key, next] = varint(data, at);
    const number = Math.floor(key / 8);
    const wireType = key % 8;
    at = next;
    switch (wireType) {
      case 0:
        at = varint(data, at)[1];
        out.push({ number, wireType });
        break;
      case 1:
        at += 8;
        out.push({ number, wireType });
        break;
      case 2: {
        const [length, start] = varint(data, at);
        if (start + length > data.length) {
          throw new ProtoFormatError(`field ${number} runs past the end (${length} bytes)`);
        }
        out.push({ number, wireType, bytes: data.subarray(start, start + length) });
        at = start + length;
        break;
      }
      case 5:
        at += 4;
        out.push({ number, wireType });
        break;
      default:
        throw new ProtoFormatError(`unsupported wire type ${wireType} at offset ${at}`);
    }
    if (at > data.length) throw new ProtoFormatError("message truncated");
  }
  return out;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** The length-delimited values of field `number` (repeated or not). */
export function bytesOf(message: ProtoField[], number: number): Uint8Array[] {
  return message.filter((f) => f.number === number && f.bytes !== undefined).map((f) => f.bytes!);
}

/** The strings of field `number`; invalid UTF-8 is an error. */
export function stringsOf(message: ProtoField[], number: number): string[] {
  return bytesOf(message, number).map((bytes) => {
    try {
      return decoder.decode(bytes);
    } catch {
      throw new ProtoFormatError(`field ${number} is not UTF-8`);
    }
  });
}
