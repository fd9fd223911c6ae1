// The shapes `ipvsadm -S` writes, parsed from the line's text straight into a request record:
// -A/-E/-a/-e with -t/-u ADDRESS:PORT (dotted quad) or -f FWMARK, -s, -p [timeout], -r,
// -g/-m/-i, -w, -x, -y, each a word of its own and given once. A line in the order ipvsadm -S
// writes is matched by one regular expression (matchInto()); a line of these options in another
// order is read word by word (parse()). Anything else (another option, a long option, a
// cluster, an attached value, IPv6, a host or port name, a value out of range, a repeated
// option: every line the full parser would refuse among them) is declined, and the full parser
// (options.ts) takes the line, so that errors and unusual lines stay exactly its own. A line
// taken here gives the same record as the full parser's entry through requestOf().
import { Command } from '../../constants';
import type { RequestWriter } from '../../records';
import type { LibFunction } from './requests';

const DASH = 0x2d;
const DOT = 0x2e;
const COLON = 0x3a;

const AF_INET = 2;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const FWD_MASQ = 0;
const FWD_TUNNEL = 2;
const FWD_ROUTE = 3;
const SVC_F_PERSISTENT = 0x1;
const DEFAULT_PERSISTENCE = 360;
const MAX_TIMEOUT = 86400 * 31;
const INT_MAX = 0x7fffffff;
const SCHEDULER_MAX = 15;

// Options seen on the line (a repeated one is declined: the full parser names it).
const SERVICE = 1;
const SCHEDULER = 2;
const PERSISTENT = 4;
const SERVER = 8;
const FORWARD = 16;
const WEIGHT = 32;
const UTHRESHOLD = 64;
const LTHRESHOLD = 128;

/** The value of text[start, end) as 1 to `maxDigits` decimal digits, else -1. */
function digits(text: string, start: number, end: number, maxDigits: number): number {
  const length = end - start;
  if (length === 0 || length > maxDigits) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return -1;
    value = value * 10 + c;
  }
  return value;
}

const BLANKS = '[ \\t\\r]+';
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
// One group for the whole `a.b.c.d:port` (checked here, read by endpointInto()): a capture is
// a new string, and turning one into a number hashes it first.
const ENDPOINT = `(${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}:\\d{1,5})`;
const SERVICE_OPTION = `(?:-([tu])${BLANKS}${ENDPOINT}|-f${BLANKS}(\\d{1,10}))`;
const LINE_END = '[ \\t\\r]*(?:\\n|$)';
const PREFIX = `(?:ipvsadm${BLANKS})?`;
// -A|-E SERVICE [-s SCHEDULER] [-p [TIMEOUT]]: groups 1 command, 2 t|u, 3 address:port,
// 4 fwmark, 5 scheduler (not the word ipvsadm, which restore input drops), 6 -p, 7 timeout.
const SERVICE_LINE = new RegExp(
  `${PREFIX}-([AE])${BLANKS}${SERVICE_OPTION}(?:${BLANKS}-s${BLANKS}((?!ipvsadm(?:[ \\t\\r\\n]|$))[!-,.-~][!-~]{0,14}))?` +
  `(?:${BLANKS}(-p)(?:${BLANKS}(\\d{1,8}))?)?${LINE_END}`, 'y');
// -a|-e SERVICE -r SERVER [-g|-m|-i] [-w N] [-x N] [-y N]: groups 1 command, 2 t|u,
// 3 address:port, 4 fwmark, 5 server address:port, 6 g|m|i, 7 w, 8 x, 9 y.
const SERVER_LINE = new RegExp(
  `${PREFIX}-([ae])${BLANKS}${SERVICE_OPTION}${BLANKS}-r${BLANKS}${ENDPOINT}(?:${BLANKS}-([gmi]))?` +
  `(?:${BLANKS}-w${BLANKS}(\\d{1,10}))?(?:${BLANKS}-x${BLANKS}(\\d{1,10}))?(?:${BLANKS}-y${BLANKS}(\\d{1,10}))?${LINE_END}`, 'y');

function exec(pattern: RegExp, text: string, position: number): RegExpExecArray | null {
  pattern.lastIndex = position;
  return pattern.exec(text);
}

/** The port endpointAddress() read last. */
let endpointPort = 0;

/**
 * The address of `a.b.c.d:port` (as ENDPOINT matched it) as a number; its port is left in
 * endpointPort.
 */
function endpointAddress(text: string): number {
  let address = 0;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === DOT || c === COLON) {
      address = address * 256 + value;
      value = 0;
    } else {
      value = value * 10 + (c - 0x30);
    }
  }
  endpointPort = value;
  return address;
}

/** A restore line of the common shapes, parsed; reused from line to line. */
export class FastLine {
  /** NEW_SERVICE, SET_SERVICE, NEW_DEST or SET_DEST. */
  command = 0;
  /** libipvs' function for the command, for its error messages. */
  fn: LibFunction = 'add_service';
  #destination = false;
  #protocol = 0;
  #address = 0;
  #port = 0;
  #fwmark = 0;
  #scheduler = '';
  #lastScheduler = '';
  #persistent = false;
  #timeout = 0;
  #destAddress = 0;
  #destPort = 0;
  #forward = FWD_ROUTE;
  #weight = 1;
  #upper = 0;
  #lower = 0;
  // Where #endpoint() leaves what it parsed.
  #parsedAddress = 0;
  #parsedPort = 0;
  // The service endpoint matchInto() read last (a restore repeats it on every server line).
  #lastEndpoint = '';
  #lastEndpointAddress = 0;
  #lastEndpointPort = 0;

  /** The service's `a.b.c.d:port` as its address (returned) and port (#lastEndpointPort). */
  #serviceEndpoint(text: string): number {
    if (text !== this.#lastEndpoint) {
      this.#lastEndpointAddress = endpointAddress(text);
      this.#lastEndpointPort = endpointPort;
      this.#lastEndpoint = text;
    }
    return this.#lastEndpointAddress;
  }

  /**
   * Matches the line that starts at `position` against the shapes in ipvsadm -S order and, if
   * it takes the line, appends its request to `writer` (this.fn names its libipvs function).
   * Returns where the next line starts, or -1, having written nothing, for a line it does not
   * take. Locals only and one write: this runs once per line of a cold process.
   */
  matchInto(text: string, position: number, writer: RequestWriter): number {
    // -a/-e lines are the server shape; after an `ipvsadm` prefix, try both.
    const c = text.charCodeAt(position + 1);
    let destination = c === 0x61 || c === 0x65;
    let pattern = destination ? SERVER_LINE : SERVICE_LINE;
    let m = exec(pattern, text, position);
    if (m === null && c === 0x70) {
      destination = !destination;
      pattern = destination ? SERVER_LINE : SERVICE_LINE;
      m = exec(pattern, text, position);
    }
    if (m === null) return -1;
    const fwmark = m[2] === undefined ? +m[4]! : 0;
    const address = m[2] === undefined ? 0 : this.#serviceEndpoint(m[3]!);
    const port = m[2] === undefined ? 0 : this.#lastEndpointPort;
    if (m[2] === undefined ? fwmark < 1 || fwmark > 0xffffffff : port > 65535) return -1;
    const o = writer.offsets;
    if (!destination) {
      const persistent = m[6] !== undefined;
      const timeout = !persistent ? 0 : m[7] === undefined ? DEFAULT_PERSISTENCE : +m[7];
      if (persistent ? timeout < 1 || timeout > MAX_TIMEOUT : !fwmark && port === 0) return -1;
      const add = m[1] === 'A';
      this.fn = add ? 'add_service' : 'update_service';
      const scheduler = writer.string(m[5] ?? 'wlc');
      const base = writer.begin(add ? Command.NEW_SERVICE : Command.SET_SERVICE);
      const w = writer.words;
      const sb = o.svcBit;
      w[base + o.svcAf] = AF_INET;
      if (fwmark) {
        w[base + o.svcFwmark] = fwmark;
        w[base + o.svc] = sb.af | sb.fwmark | sb.scheduler | sb.flags | sb.flagsMask | sb.timeout | sb.netmask;
      } else {
        w[base + o.svcProtocol] = m[2] === 't' ? IPPROTO_TCP : IPPROTO_UDP;
        putAddress(writer.bytes, (base + o.svcAddress) * 4, address);
        w[base + o.svcPort] = port;
        w[base + o.svc] = sb.af | sb.protocol | sb.address | sb.port | sb.scheduler | sb.flags | sb.flagsMask | sb.timeout | sb.netmask;
      }
      w[base + o.svcScheduler] = scheduler;
      w[base + o.svcFlags] = persistent ? SVC_F_PERSISTENT : 0;
      w[base + o.svcFlagsMask] = 0xffffffff;
      w[base + o.svcTimeout] = timeout;
      w[base + o.svcNetmask] = 0xffffffff;
      writer.end();
      return pattern.lastIndex;
    }
    const serverAddress = endpointAddress(m[5]!);
    const serverPort = endpointPort;
    const weight = m[7] === undefined ? 1 : +m[7];
    const upper = m[8] === undefined ? 0 : +m[8];
    const lower = m[9] === undefined ? 0 : +m[9];
    if (serverPort > 65535 || weight > INT_MAX || upper > INT_MAX || lower > INT_MAX) return -1;
    const forward = m[6] === 'm' ? FWD_MASQ : m[6] === 'i' ? FWD_TUNNEL : FWD_ROUTE;
    const add = m[1] === 'a';
    this.fn = add ? 'add_dest' : 'update_dest';
    const base = writer.begin(add ? Command.NEW_DEST : Command.SET_DEST);
    const w = writer.words;
    const bytes = writer.bytes;
    const sb = o.svcBit;
    w[base + o.svcAf] = AF_INET;
    if (fwmark) {
      w[base + o.svcFwmark] = fwmark;
      w[base + o.svc] = sb.af | sb.fwmark;
    } else {
      w[base + o.svcProtocol] = m[2] === 't' ? IPPROTO_TCP : IPPROTO_UDP;
      putAddress(bytes, (base + o.svcAddress) * 4, address);
      w[base + o.svcPort] = port;
      w[base + o.svc] = sb.af | sb.protocol | sb.address | sb.port;
    }
    const db = o.dstBit;
    putAddress(bytes, (base + o.dstAddress) * 4, serverAddress);
    w[base + o.dstPort] = !fwmark && forward !== FWD_MASQ ? port : serverPort;
    w[base + o.dstForward] = forward;
    w[base + o.dstWeight] = weight;
    w[base + o.dstUpperThreshold] = upper;
    w[base + o.dstLowerThreshold] = lower;
    w[base + o.dstAf] = AF_INET;
    w[base + o.dst] = db.address | db.port | db.forward | db.weight | db.upperThreshold | db.lowerThreshold | db.af |
      db.tunnelType | db.tunnelPort | db.tunnelFlags;
    writer.end();
    return pattern.lastIndex;
  }

  /**
   * Parses the line whose words are text[starts[i], ends[i]) for i < count ('ipvsadm' words
   * already dropped). Returns false, having decided nothing, for any line it does not take.
   */
  parse(text: string, starts: Int32Array, ends: Int32Array, count: number): boolean {
    const s0 = starts[0]!;
    if (ends[0]! - s0 !== 2 || text.charCodeAt(s0) !== DASH) return false;
    switch (text.charCodeAt(s0 + 1)) {
      case 0x41: this.command = Command.NEW_SERVICE; this.fn = 'add_service'; this.#destination = false; break; // A
      case 0x45: this.command = Command.SET_SERVICE; this.fn = 'update_service'; this.#destination = false; break; // E
      case 0x61: this.command = Command.NEW_DEST; this.fn = 'add_dest'; this.#destination = true; break; // a
      case 0x65: this.command = Command.SET_DEST; this.fn = 'update_dest'; this.#destination = true; break; // e
      default: return false;
    }
    const destination = this.#destination;
    this.#protocol = 0;
    this.#address = 0;
    this.#port = 0;
    this.#fwmark = 0;
    this.#scheduler = 'wlc';
    this.#persistent = false;
    this.#timeout = 0;
    this.#forward = FWD_ROUTE;
    this.#weight = 1;
    this.#upper = 0;
    this.#lower = 0;
    let seen = 0;
    let i = 1;
    while (i < count) {
      const start = starts[i]!;
      if (ends[i]! - start !== 2 || text.charCodeAt(start) !== DASH) return false;
      const letter = text.charCodeAt(start + 1);
      i++;
      // The options without a value.
      if (letter === 0x67 || letter === 0x6d || letter === 0x69) { // g m i
        if (!destination || seen & FORWARD) return false;
        seen |= FORWARD;
        this.#forward = letter === 0x67 ? FWD_ROUTE : letter === 0x6d ? FWD_MASQ : FWD_TUNNEL;
        continue;
      }
      if (letter === 0x70) { // p [timeout]
        if (destination || seen & PERSISTENT) return false;
        seen |= PERSISTENT;
        this.#persistent = true;
        this.#timeout = DEFAULT_PERSISTENCE;
        // popt takes the next word as the optional value unless it starts with '-'.
        if (i < count && text.charCodeAt(starts[i]!) !== DASH) {
          const timeout = digits(text, starts[i]!, ends[i]!, 8);
          if (timeout < 1 || timeout > MAX_TIMEOUT) return false;
          this.#timeout = timeout;
          i++;
        }
        continue;
      }
      // The options with a value: the next word.
      if (i >= count) return false;
      const vs = starts[i]!;
      const ve = ends[i]!;
      i++;
      switch (letter) {
        case 0x74: case 0x75: // t u
          if (seen & SERVICE || !this.#endpoint(text, vs, ve)) return false;
          seen |= SERVICE;
          this.#protocol = letter === 0x74 ? IPPROTO_TCP : IPPROTO_UDP;
          this.#address = this.#parsedAddress;
          this.#port = this.#parsedPort;
          break;
        case 0x66: { // f
          if (seen & SERVICE) return false;
          seen |= SERVICE;
          const fwmark = digits(text, vs, ve, 10);
          if (fwmark < 1 || fwmark > 0xffffffff) return false;
          this.#fwmark = fwmark;
          this.#protocol = IPPROTO_TCP;
          break;
        }
        case 0x73: // s
          if (destination || seen & SCHEDULER || !this.#schedulerName(text, vs, ve)) return false;
          seen |= SCHEDULER;
          break;
        case 0x72: // r
          if (!destination || seen & SERVER || !this.#endpoint(text, vs, ve)) return false;
          seen |= SERVER;
          this.#destAddress = this.#parsedAddress;
          this.#destPort = this.#parsedPort;
          break;
        case 0x77: // w
          if (!destination || seen & WEIGHT || (this.#weight = digits(text, vs, ve, 10)) < 0 || this.#weight > INT_MAX) return false;
          seen |= WEIGHT;
          break;
        case 0x78: // x
          if (!destination || seen & UTHRESHOLD || (this.#upper = digits(text, vs, ve, 10)) < 0 || this.#upper > INT_MAX) return false;
          seen |= UTHRESHOLD;
          break;
        case 0x79: // y
          if (!destination || seen & LTHRESHOLD || (this.#lower = digits(text, vs, ve, 10)) < 0 || this.#lower > INT_MAX) return false;
          seen |= LTHRESHOLD;
          break;
        default:
          return false;
      }
    }
    if (!(seen & SERVICE)) return false;
    if (destination) {
      if (!(seen & SERVER)) return false;
      if (!this.#fwmark && (this.#forward === FWD_TUNNEL || this.#forward === FWD_ROUTE)) this.#destPort = this.#port;
    } else if (!this.#fwmark && this.#port === 0 && !this.#persistent) {
      return false;
    }
    return true;
  }

  /**
   * Appends the parsed line's request to `writer`, as writer.add() of requestOf()'s wire form
   * would. begin() hands out an all-zero slot, so the zero fields (the address bytes past the
   * IPv4 ones, the tunnel fields) are left as they are.
   */
  write(writer: RequestWriter): void {
    const o = writer.offsets;
    const base = writer.begin(this.command);
    const w = writer.words;
    const sb = o.svcBit;
    let present = sb.af;
    w[base + o.svcAf] = AF_INET;
    if (this.#fwmark) {
      present |= sb.fwmark;
      w[base + o.svcFwmark] = this.#fwmark;
    } else {
      present |= sb.protocol | sb.address | sb.port;
      w[base + o.svcProtocol] = this.#protocol;
      putAddress(writer.bytes, (base + o.svcAddress) * 4, this.#address);
      w[base + o.svcPort] = this.#port;
    }
    if (!this.#destination) {
      present |= sb.scheduler | sb.flags | sb.flagsMask | sb.timeout | sb.netmask;
      w[base + o.svcScheduler] = writer.string(this.#scheduler);
      w[base + o.svcFlags] = this.#persistent ? SVC_F_PERSISTENT : 0;
      w[base + o.svcFlagsMask] = 0xffffffff;
      w[base + o.svcTimeout] = this.#timeout;
      w[base + o.svcNetmask] = 0xffffffff;
      w[base + o.svc] = present;
    } else {
      w[base + o.svc] = present;
      const db = o.dstBit;
      putAddress(writer.bytes, (base + o.dstAddress) * 4, this.#destAddress);
      w[base + o.dstPort] = this.#destPort;
      w[base + o.dstForward] = this.#forward;
      w[base + o.dstWeight] = this.#weight;
      w[base + o.dstUpperThreshold] = this.#upper;
      w[base + o.dstLowerThreshold] = this.#lower;
      w[base + o.dstAf] = AF_INET;
      w[base + o.dst] = db.address | db.port | db.forward | db.weight | db.upperThreshold | db.lowerThreshold | db.af |
        db.tunnelType | db.tunnelPort | db.tunnelFlags;
    }
    writer.end();
  }

  /**
   * A.B.C.D:PORT in text[start, end): four decimal octets without leading zeros (what the full
   * parser's own fast path takes before inet_aton's forms) and 1-5 digits of port.
   */
  #endpoint(text: string, start: number, end: number): boolean {
    let address = 0;
    let octet = 0;
    let octetDigits = 0;
    let octets = 0;
    let i = start;
    for (; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x30 && c <= 0x39) {
        if (octetDigits > 0 && octet === 0) return false;
        octet = octet * 10 + (c - 0x30);
        if (octet > 255) return false;
        octetDigits++;
      } else if (c === DOT && octetDigits > 0 && octets < 3) {
        address = address * 256 + octet;
        octets++;
        octet = 0;
        octetDigits = 0;
      } else if (c === COLON && octetDigits > 0 && octets === 3) {
        break;
      } else {
        return false;
      }
    }
    if (i === end) return false;
    const port = digits(text, i + 1, end, 5);
    if (port < 0 || port > 65535) return false;
    this.#parsedAddress = address * 256 + octet;
    this.#parsedPort = port;
    return true;
  }

  /** A scheduler name of printable ASCII, short enough that the full parser keeps it whole. */
  #schedulerName(text: string, start: number, end: number): boolean {
    if (end - start > SCHEDULER_MAX || text.charCodeAt(start) === DASH) return false;
    for (let i = start; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c <= 0x20 || c >= 0x7f) return false;
    }
    // Most files name a handful of schedulers: reuse the string of the last one.
    const last = this.#lastScheduler;
    if (!(last.length === end - start && text.startsWith(last, start))) this.#lastScheduler = text.slice(start, end);
    this.#scheduler = this.#lastScheduler;
    return true;
  }
}

/** An IPv4 address (host number) as the first 4 of the record's 16 address bytes. */
function putAddress(bytes: Uint8Array, at: number, address: number): void {
  bytes[at] = address >>> 24;
  bytes[at + 1] = (address >>> 16) & 0xff;
  bytes[at + 2] = (address >>> 8) & 0xff;
  bytes[at + 3] = address & 0xff;
}
