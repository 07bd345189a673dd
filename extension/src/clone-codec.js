// Foresight's structured-clone codec, format "sclone" version 1 (docs/PROTOCOL.md, "Worker
// data"). One file, evaluated in three places: the page's MAIN world (content-main.js encodes
// what the page posts to a remote worker and decodes what comes back), the broker's executor
// (QuickJS, before prelude.js; `include_str!` in broker/src/executor/quickjs.rs) and the
// tests. It carries what the HTML structured-clone algorithm carries and JSON cannot:
// undefined, NaN, +-Infinity, -0, BigInt, Date, RegExp, Map, Set, ArrayBuffer, every typed
// array and DataView (sharing one buffer stays shared), primitive wrappers, Errors, sparse
// holes and cyclic or shared references.
//
// The file defines one global, `__foresightCloneCodec(options)`, a factory the embedder takes
// and deletes before any untrusted script runs (so page scripts never see it). The factory
// captures every intrinsic it uses at the time it is called, so a script that later patches
// Map.prototype, Array iterators or typed-array methods can neither break nor observe the
// codec. It never calls a method looked up on the values it walks.
//
// Limits: at most `maxBytes` of output (a DataCloneError beyond it, before the memory is
// spent) and MAX_DEPTH levels of nesting. The decoder treats its input as hostile: every
// length is checked against what is left, unknown tags and bad back-references are errors.
globalThis.__foresightCloneCodec = function makeCloneCodec(options) {
  "use strict";
  const opts = options || {};
  const VERSION = 1;
  const MAX_DEPTH = 1000;
  const maxBytes = opts.maxBytes || 8 * 1024 * 1024;

  const G = globalThis;
  const call = Function.prototype.call;
  const uncurry = (f) => call.bind(f);
  const getter = (proto, name) => uncurry(Object.getOwnPropertyDescriptor(proto, name).get);

  const ObjectKeys = Object.keys;
  const defineProperty = Object.defineProperty;
  const getPrototypeOf = Object.getPrototypeOf;
  const hasOwn = uncurry(Object.prototype.hasOwnProperty);
  const toStringTag = uncurry(Object.prototype.toString);
  const isArray = Array.isArray;
  const ObjectIs = Object.is;
  const fromCharCode = String.fromCharCode;
  const charCodeAt = uncurry(String.prototype.charCodeAt);
  const isWellFormed = String.prototype.isWellFormed ? uncurry(String.prototype.isWellFormed) : null;
  const MapCtor = Map;
  const SetCtor = Set;
  const mapSize = getter(Map.prototype, "size");
  const mapForEach = uncurry(Map.prototype.forEach);
  const mapSet = uncurry(Map.prototype.set);
  const mapGet = uncurry(Map.prototype.get);
  const setSize = getter(Set.prototype, "size");
  const setForEach = uncurry(Set.prototype.forEach);
  const setAdd = uncurry(Set.prototype.add);
  const DateCtor = Date;
  const dateValue = uncurry(Date.prototype.getTime);
  const RegExpCtor = RegExp;
  const regexpSource = getter(RegExp.prototype, "source");
  const regexpFlags = getter(RegExp.prototype, "flags");
  const ArrayBufferCtor = ArrayBuffer;
  const abByteLength = getter(ArrayBuffer.prototype, "byteLength");
  const abSlice = uncurry(ArrayBuffer.prototype.slice);
  const abTransfer = ArrayBuffer.prototype.transfer ? uncurry(ArrayBuffer.prototype.transfer) : null;
  const abDetached = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "detached")
    ? getter(ArrayBuffer.prototype, "detached")
    : null;
  const SharedArrayBufferProto = typeof SharedArrayBuffer === "function" ? SharedArrayBuffer.prototype : null;
  const sabByteLength = SharedArrayBufferProto ? getter(SharedArrayBufferProto, "byteLength") : null;
  const TypedArrayProto = getPrototypeOf(Uint8Array.prototype);
  const taTag = getter(TypedArrayProto, Symbol.toStringTag);
  const taBuffer = getter(TypedArrayProto, "buffer");
  const taByteOffset = getter(TypedArrayProto, "byteOffset");
  const taLength = getter(TypedArrayProto, "length");
  const taSet = uncurry(TypedArrayProto.set);
  const taSubarray = uncurry(TypedArrayProto.subarray);
  const DataViewCtor = DataView;
  const dvBuffer = getter(DataView.prototype, "buffer");
  const dvByteOffset = getter(DataView.prototype, "byteOffset");
  const dvByteLength = getter(DataView.prototype, "byteLength");
  const dvGetFloat64 = uncurry(DataView.prototype.getFloat64);
  const dvSetFloat64 = uncurry(DataView.prototype.setFloat64);
  const U8 = Uint8Array;
  const booleanValue = uncurry(Boolean.prototype.valueOf);
  const numberValue = uncurry(Number.prototype.valueOf);
  const stringValue = uncurry(String.prototype.valueOf);
  const BigIntCtor = typeof BigInt === "function" ? BigInt : null;
  const bigintValue = BigIntCtor ? uncurry(BigInt.prototype.valueOf) : null;
  const ObjectCtor = Object;
  const ErrorCtor = Error;
  const errorIsError = typeof Error.isError === "function" ? Error.isError : null;
  const errorCtors = {
    Error,
    EvalError,
    RangeError,
    ReferenceError,
    SyntaxError,
    TypeError,
    URIError,
  };
  const weakBrands = [];
  for (const [proto, method] of [
    [typeof WeakMap === "function" && WeakMap.prototype, "has"],
    [typeof WeakSet === "function" && WeakSet.prototype, "has"],
    [typeof WeakRef === "function" && WeakRef.prototype, "deref"],
  ]) {
    if (proto) weakBrands.push(uncurry(proto[method]));
  }
  const DOMExceptionCtor = typeof DOMException === "function" ? DOMException : null;

  // Views by kind number (the wire's numbering; docs/PROTOCOL.md).
  const VIEW_NAMES = [
    "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array",
    "Uint32Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array", "DataView",
    "Float16Array",
  ];
  const viewKind = ObjectCtor.create(null);
  const viewCtor = [];
  for (let i = 0; i < VIEW_NAMES.length; i++) {
    viewKind[VIEW_NAMES[i]] = i;
    viewCtor[i] = typeof G[VIEW_NAMES[i]] === "function" ? G[VIEW_NAMES[i]] : null;
  }

  // UTF-8 by the platform when it has TextEncoder/TextDecoder, or by the embedder (QuickJS).
  let utf8Encode = opts.utf8Encode;
  let utf8Decode = opts.utf8Decode;
  if (!utf8Encode) {
    const encoder = new TextEncoder();
    const encode = uncurry(TextEncoder.prototype.encode);
    utf8Encode = (s) => encode(encoder, s);
  }
  if (!utf8Decode) {
    const decoder = new TextDecoder();
    const decode = uncurry(TextDecoder.prototype.decode);
    utf8Decode = (bytes) => decode(decoder, bytes);
  }

  const T = {
    UNDEFINED: 0x00, NULL: 0x01, FALSE: 0x02, TRUE: 0x03, INT: 0x04, DOUBLE: 0x05, BIGINT: 0x06,
    UTF8: 0x07, UTF16: 0x08, HOLE: 0x09, OBJECT: 0x10, ARRAY: 0x11, DATE: 0x13, REGEXP: 0x14,
    MAP: 0x15, SET: 0x16, ARRAY_BUFFER: 0x17, VIEW: 0x18, BOOLEAN_OBJECT: 0x19,
    NUMBER_OBJECT: 0x1a, STRING_OBJECT: 0x1b, BIGINT_OBJECT: 0x1c, ERROR: 0x1d, BACKREF: 0x1f,
  };

  function cloneError(message) {
    if (DOMExceptionCtor) return new DOMExceptionCtor(message, "DataCloneError");
    const e = new ErrorCtor(message);
    e.name = "DataCloneError";
    return e;
  }

  function describeType(v) {
    if (typeof v === "function") return "a function";
    if (typeof v === "symbol") return "a Symbol";
    const tag = toStringTag(v);
    return tag.slice(8, -1) + " object";
  }

  // --- Writing ---------------------------------------------------------------------------

  let buf = new U8(1024);
  let view = new DataViewCtor(buf.buffer);
  let pos = 0;

  function reserve(n) {
    const need = pos + n;
    if (need > maxBytes) {
      throw cloneError(
        `the message is larger than ${maxBytes} bytes, the most a remote worker message may be`,
      );
    }
    if (need <= buf.length) return;
    let size = buf.length * 2;
    while (size < need) size *= 2;
    if (size > maxBytes) size = maxBytes;
    const bigger = new U8(size);
    taSet(bigger, taSubarray(buf, 0, pos), 0);
    buf = bigger;
    view = new DataViewCtor(buf.buffer);
  }

  function u8(b) {
    reserve(1);
    buf[pos++] = b;
  }

  // Unsigned LEB128 of a non-negative safe integer (arithmetic, not bitwise: lengths may
  // exceed 2^31).
  function varint(n) {
    reserve(8);
    while (n >= 0x80) {
      buf[pos++] = (n % 0x80) + 0x80;
      n = Math.floor(n / 0x80);
    }
    buf[pos++] = n;
  }

  function f64(x) {
    reserve(8);
    dvSetFloat64(view, pos, x, true);
    pos += 8;
  }

  function bytes(src) {
    reserve(src.length);
    taSet(buf, src, pos);
    pos += src.length;
  }

  function writeString(s) {
    const n = s.length;
    if (n <= 64) {
      // Short strings: ASCII written directly, without a call into the platform.
      let ascii = true;
      for (let i = 0; i < n; i++) {
        if (charCodeAt(s, i) >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) {
        u8(T.UTF8);
        varint(n);
        reserve(n);
        for (let i = 0; i < n; i++) buf[pos++] = charCodeAt(s, i);
        return;
      }
    }
    if (!isWellFormed || isWellFormed(s)) {
      const encoded = utf8Encode(s);
      u8(T.UTF8);
      varint(encoded.length);
      bytes(encoded);
      return;
    }
    // Lone surrogates survive only as UTF-16 code units.
    u8(T.UTF16);
    varint(n);
    reserve(2 * n);
    for (let i = 0; i < n; i++) {
      const c = charCodeAt(s, i);
      buf[pos++] = c & 0xff;
      buf[pos++] = c >> 8;
    }
  }

  function writeBigInt(v) {
    let sign = 0;
    if (v < 0n) {
      sign = 1;
      v = -v;
    }
    const digits = [];
    while (v > 0n) {
      digits[digits.length] = Number(v & 0xffn);
      v >>= 8n;
    }
    u8(sign);
    varint(digits.length);
    reserve(digits.length);
    for (let i = 0; i < digits.length; i++) buf[pos++] = digits[i];
  }

  function writeNumber(v) {
    if ((v | 0) === v && !ObjectIs(v, -0)) {
      u8(T.INT);
      varint(v >= 0 ? v * 2 : -v * 2 - 1);
    } else {
      u8(T.DOUBLE);
      f64(v);
    }
  }

  function brand(check, v) {
    try {
      check(v);
      return true;
    } catch {
      return false;
    }
  }

  function isError(v) {
    if (errorIsError) return errorIsError(v);
    return v instanceof ErrorCtor;
  }

  function encoder() {
    const seen = new MapCtor(); // object -> index
    let depth = 0;

    function value(v) {
      switch (typeof v) {
        case "undefined":
          return u8(T.UNDEFINED);
        case "boolean":
          return u8(v ? T.TRUE : T.FALSE);
        case "number":
          return writeNumber(v);
        case "string":
          return writeString(v);
        case "bigint":
          u8(T.BIGINT);
          return writeBigInt(v);
        case "object":
          if (v === null) return u8(T.NULL);
          return object(v);
        default:
          throw cloneError(`${describeType(v)} could not be cloned`);
      }
    }

    function object(v) {
      const ref = mapGet(seen, v);
      if (ref !== undefined) {
        u8(T.BACKREF);
        varint(ref);
        return;
      }
      if (++depth > MAX_DEPTH) throw cloneError(`the message nests deeper than ${MAX_DEPTH} levels`);
      mapSet(seen, v, mapSize(seen));
      if (isArray(v)) array(v);
      else composite(v);
      depth--;
    }

    function array(v) {
      const n = v.length;
      u8(T.ARRAY);
      varint(n);
      for (let i = 0; i < n; i++) {
        if (hasOwn(v, i)) value(v[i]);
        else u8(T.HOLE);
      }
    }

    function composite(v) {
      const typed = taTag(v);
      if (typed !== undefined) return typedArray(v, typed);
      // Dispatch on the object's tag (no exceptions on the common path), then confirm the
      // claimed type with a brand check, which a Symbol.toStringTag cannot fake.
      const tag = toStringTag(v);
      switch (tag) {
        case "[object Object]":
        case "[object Arguments]":
          if (!isError(v)) return plain(v);
          break;
        case "[object Map]":
          if (brand(mapSize, v)) {
            u8(T.MAP);
            varint(mapSize(v));
            mapForEach(v, (val, key) => {
              value(key);
              value(val);
            });
            return;
          }
          break;
        case "[object Set]":
          if (brand(setSize, v)) {
            u8(T.SET);
            varint(setSize(v));
            setForEach(v, (key) => value(key));
            return;
          }
          break;
        case "[object Date]":
          if (brand(dateValue, v)) {
            u8(T.DATE);
            return f64(dateValue(v));
          }
          break;
        case "[object RegExp]":
          if (brand(regexpSource, v) && v !== RegExpCtor.prototype) {
            u8(T.REGEXP);
            writeString(regexpSource(v));
            return writeString(regexpFlags(v));
          }
          break;
        case "[object ArrayBuffer]":
          if (brand(abByteLength, v)) return arrayBuffer(v);
          break;
        case "[object DataView]":
          if (brand(dvByteLength, v)) return dataView(v);
          break;
        case "[object Boolean]":
          if (brand(booleanValue, v)) {
            u8(T.BOOLEAN_OBJECT);
            return u8(booleanValue(v) ? 1 : 0);
          }
          break;
        case "[object Number]":
          if (brand(numberValue, v)) {
            u8(T.NUMBER_OBJECT);
            return f64(numberValue(v));
          }
          break;
        case "[object String]":
          if (brand(stringValue, v)) {
            u8(T.STRING_OBJECT);
            return writeString(stringValue(v));
          }
          break;
        case "[object BigInt]":
          if (bigintValue && brand(bigintValue, v)) {
            u8(T.BIGINT_OBJECT);
            return writeBigInt(bigintValue(v));
          }
          break;
        case "[object SharedArrayBuffer]":
          if (sabByteLength && brand(sabByteLength, v)) {
            throw cloneError("a SharedArrayBuffer cannot be shared with a remote worker");
          }
          break;
        default:
          break;
      }
      if (isError(v)) return error(v);
      for (let i = 0; i < weakBrands.length; i++) {
        if (brand((o) => weakBrands[i](o, {}), v)) throw cloneError(`${describeType(v)} could not be cloned`);
      }
      if (tag === "[object Object]" || tag === "[object Arguments]") return plain(v);
      // Promises, platform objects (Blob, MessagePort, ImageBitmap...), or an object whose
      // Symbol.toStringTag claims a type it is not: nothing a remote worker could receive.
      throw cloneError(`${describeType(v)} could not be cloned to a remote worker`);
    }

    function plain(v) {
      const keys = ObjectKeys(v);
      u8(T.OBJECT);
      varint(keys.length);
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i];
        writeString(key);
        value(v[key]);
      }
    }

    function error(v) {
      u8(T.ERROR);
      let name = "Error";
      try {
        const n = v.name;
        if (typeof n === "string" && errorCtors[n] && hasOwn(errorCtors, n)) name = n;
      } catch {
        // A throwing getter: keep "Error", as the algorithm does for unknown names.
      }
      writeString(name);
      const message = hasOwn(v, "message") ? v.message : undefined;
      if (message === undefined) u8(T.UNDEFINED);
      else writeString(`${message}`);
      const stack = typeof v.stack === "string" ? v.stack : undefined;
      if (stack === undefined) u8(T.UNDEFINED);
      else writeString(stack);
    }

    function arrayBuffer(v) {
      if (abDetached && abDetached(v)) throw cloneError("a detached ArrayBuffer could not be cloned");
      const n = abByteLength(v);
      u8(T.ARRAY_BUFFER);
      varint(n);
      bytes(new U8(v, 0, n));
    }

    function viewOf(kind, buffer, offset, length) {
      u8(T.VIEW);
      u8(kind);
      varint(offset);
      varint(length);
      // The buffer is its own object: two views on one buffer still share it on arrival.
      object(buffer);
    }

    function typedArray(v, tag) {
      const kind = viewKind[tag];
      if (kind === undefined) throw cloneError(`${tag} could not be cloned`);
      viewOf(kind, taBuffer(v), taByteOffset(v), taLength(v));
    }

    function dataView(v) {
      viewOf(viewKind.DataView, dvBuffer(v), dvByteOffset(v), dvByteLength(v));
    }

    return value;
  }

  /**
   * Encodes `value` into a fresh Uint8Array. Throws a DataCloneError for what the
   * structured-clone algorithm refuses, and for messages over the size limit.
   */
  let busy = false;
  function encode(value) {
    // A getter on the value may post a message itself: that nested encode gets a scratch
    // buffer of its own.
    const outer = busy ? [buf, view, pos] : null;
    if (outer || buf.length > 65536) {
      // (and a large message's scratch buffer is not kept alive)
      buf = new U8(1024);
      view = new DataViewCtor(buf.buffer);
    }
    busy = true;
    pos = 0;
    try {
      u8(VERSION);
      encoder()(value);
      const out = new U8(pos);
      taSet(out, taSubarray(buf, 0, pos), 0);
      return out;
    } finally {
      if (outer) {
        buf = outer[0];
        view = outer[1];
        pos = outer[2];
      } else {
        busy = false;
      }
    }
  }

  /**
   * Checks a transfer list as postMessage does and returns its ArrayBuffers; `detach` then
   * detaches them (call it only once the message has been encoded).
   */
  function checkTransfer(transfer) {
    const list = [];
    if (transfer == null) return list;
    if (typeof transfer !== "object" || typeof transfer.length !== "number") {
      throw new TypeError("the transfer list must be an array");
    }
    for (let i = 0; i < transfer.length; i++) {
      const item = transfer[i];
      if (typeof item !== "object" || item === null || !brand(abByteLength, item)) {
        throw cloneError(`${describeType(item)} cannot be transferred to a remote worker`);
      }
      if (abDetached && abDetached(item)) throw cloneError("an ArrayBuffer in the transfer list is detached");
      for (let j = 0; j < list.length; j++) {
        if (list[j] === item) throw cloneError("an ArrayBuffer appears twice in the transfer list");
      }
      list[list.length] = item;
    }
    return list;
  }

  function detach(list) {
    if (!abTransfer) return;
    for (let i = 0; i < list.length; i++) abTransfer(list[i]);
  }

  // --- Reading ---------------------------------------------------------------------------

  function decodeError(message) {
    const e = new ErrorCtor(`undecodable message: ${message}`);
    e.name = "DataError";
    return e;
  }

  /** Decodes bytes from `encode` (a Uint8Array). Throws a DataError on malformed input. */
  function decode(input) {
    const src = input;
    const end = src.length;
    const dv = new DataViewCtor(src.buffer, src.byteOffset, src.byteLength);
    let at = 0;
    const objects = [];
    let depth = 0;

    function need(n) {
      if (n > end - at) throw decodeError(`truncated at byte ${at}`);
    }
    function byte() {
      need(1);
      return src[at++];
    }
    function uvarint() {
      let n = 0;
      let scale = 1;
      for (let i = 0; i < 8; i++) {
        const b = byte();
        n += (b & 0x7f) * scale;
        if (b < 0x80) return n;
        scale *= 0x80;
      }
      throw decodeError(`an over-long number at byte ${at}`);
    }
    function length() {
      const n = uvarint();
      if (n > end - at) throw decodeError(`a length of ${n} at byte ${at} runs past the end`);
      return n;
    }
    function float() {
      need(8);
      const x = dvGetFloat64(dv, at, true);
      at += 8;
      return x;
    }
    function utf8(n) {
      need(n);
      const from = at;
      at += n;
      if (n <= 64) {
        let s = "";
        let i = from;
        for (; i < at; i++) {
          const b = src[i];
          if (b >= 0x80) break;
          s += fromCharCode(b);
        }
        if (i === at) return s;
      }
      return utf8Decode(taSubarray(src, from, at));
    }
    function string() {
      const tag = byte();
      if (tag === T.UTF8) return utf8(length());
      if (tag === T.UTF16) {
        const n = uvarint();
        if (n * 2 > end - at) throw decodeError("a UTF-16 string runs past the end");
        let s = "";
        for (let i = 0; i < n; i++) s += fromCharCode(src[at + 2 * i] | (src[at + 2 * i + 1] << 8));
        at += 2 * n;
        return s;
      }
      throw decodeError(`expected a string at byte ${at - 1}, found tag ${tag}`);
    }
    function optionalString() {
      if (src[at] === T.UNDEFINED) {
        at++;
        return undefined;
      }
      return string();
    }
    function bigint() {
      const sign = byte();
      const n = length();
      let v = 0n;
      for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigIntCtor(src[at + i]);
      at += n;
      return sign ? -v : v;
    }
    function remember(o) {
      objects[objects.length] = o;
      return o;
    }

    function value() {
      const tag = byte();
      switch (tag) {
        case T.UNDEFINED:
          return undefined;
        case T.NULL:
          return null;
        case T.FALSE:
          return false;
        case T.TRUE:
          return true;
        case T.INT: {
          const z = uvarint();
          return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
        }
        case T.DOUBLE:
          return float();
        case T.BIGINT:
          if (!BigIntCtor) throw decodeError("BigInt is not supported here");
          return bigint();
        case T.UTF8:
        case T.UTF16:
          at--;
          return string();
        case T.BACKREF: {
          const i = uvarint();
          if (i >= objects.length) throw decodeError(`a reference to object ${i}, not yet seen`);
          return objects[i];
        }
        default:
          if (++depth > MAX_DEPTH) throw decodeError(`nested deeper than ${MAX_DEPTH} levels`);
          try {
            return composite(tag);
          } finally {
            depth--;
          }
      }
    }

    function composite(tag) {
      switch (tag) {
        case T.OBJECT: {
          const o = remember({});
          const n = uvarint();
          for (let i = 0; i < n; i++) {
            const key = string();
            const v = value();
            // Plain assignment is several times faster than defineProperty; only "__proto__"
            // would mean something else. (A setter the page put on Object.prototype would
            // see the value, which is the page's own data anyway.)
            if (key === "__proto__") {
              defineProperty(o, key, { value: v, writable: true, enumerable: true, configurable: true });
            } else {
              o[key] = v;
            }
          }
          return o;
        }
        case T.ARRAY: {
          const n = uvarint();
          if (n > end - at) throw decodeError(`an array of ${n} elements runs past the end`);
          const a = remember(new Array(n));
          for (let i = 0; i < n; i++) {
            if (src[at] === T.HOLE) {
              at++;
              continue;
            }
            a[i] = value();
          }
          return a;
        }
        case T.DATE:
          return remember(new DateCtor(float()));
        case T.REGEXP: {
          const index = objects.length;
          remember(null);
          const source = string();
          const flags = string();
          let re;
          try {
            re = new RegExpCtor(source, flags);
          } catch {
            throw decodeError(`an invalid RegExp /${source}/${flags}`);
          }
          objects[index] = re;
          return re;
        }
        case T.MAP: {
          const m = remember(new MapCtor());
          const n = uvarint();
          for (let i = 0; i < n; i++) {
            const k = value();
            mapSet(m, k, value());
          }
          return m;
        }
        case T.SET: {
          const s = remember(new SetCtor());
          const n = uvarint();
          for (let i = 0; i < n; i++) setAdd(s, value());
          return s;
        }
        case T.ARRAY_BUFFER: {
          const n = length();
          const b = new ArrayBufferCtor(n);
          taSet(new U8(b), taSubarray(src, at, at + n), 0);
          at += n;
          return remember(b);
        }
        case T.VIEW: {
          const index = objects.length;
          remember(null);
          const kind = byte();
          const offset = uvarint();
          const len = uvarint();
          const buffer = value();
          const Ctor = viewCtor[kind];
          if (!Ctor) throw decodeError(`unknown view kind ${kind}`);
          if (!brand(abByteLength, buffer)) throw decodeError("a view without an ArrayBuffer");
          let v;
          try {
            v = new Ctor(buffer, offset, len);
          } catch {
            throw decodeError(`a ${VIEW_NAMES[kind]} outside its buffer`);
          }
          objects[index] = v;
          return v;
        }
        case T.BOOLEAN_OBJECT:
          return remember(new ObjectCtor(byte() !== 0));
        case T.NUMBER_OBJECT:
          return remember(new ObjectCtor(float()));
        case T.STRING_OBJECT: {
          const index = objects.length;
          remember(null);
          const o = new ObjectCtor(string());
          objects[index] = o;
          return o;
        }
        case T.BIGINT_OBJECT: {
          if (!BigIntCtor) throw decodeError("BigInt is not supported here");
          const index = objects.length;
          remember(null);
          const o = new ObjectCtor(bigint());
          objects[index] = o;
          return o;
        }
        case T.ERROR: {
          const index = objects.length;
          remember(null);
          const name = string();
          const message = optionalString();
          const stack = optionalString();
          const Ctor = hasOwn(errorCtors, name) ? errorCtors[name] : ErrorCtor;
          const e = message === undefined ? new Ctor() : new Ctor(message);
          if (stack !== undefined) {
            defineProperty(e, "stack", { value: stack, writable: true, configurable: true });
          }
          objects[index] = e;
          return e;
        }
        default:
          throw decodeError(`unknown tag 0x${tag.toString(16)} at byte ${at - 1}`);
      }
    }

    if (end < 1) throw decodeError("empty");
    const version = byte();
    if (version !== VERSION) throw decodeError(`format version ${version}; this side reads ${VERSION}`);
    const result = value();
    if (at !== end) throw decodeError(`${end - at} bytes left over`);
    return result;
  }

  /** structuredClone(value, {transfer}) on top of the codec (for worlds that lack one). */
  function structuredCloneImpl(value, options) {
    const transfer = checkTransfer(options && options.transfer);
    const bytes = encode(value);
    detach(transfer);
    return decode(bytes);
  }

  return {
    VERSION,
    maxBytes,
    encode,
    decode,
    checkTransfer,
    detach,
    structuredClone: structuredCloneImpl,
  };
};
