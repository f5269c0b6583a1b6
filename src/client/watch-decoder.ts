// Splits a watch response body (a stream of JSON objects, one per line as the API server writes
// them) into whole objects. Chunks may end anywhere: inside a string, between the bytes of one
// UTF-8 character, or in the middle of a line. The scanner tracks object depth and strings, so it
// does not depend on the newlines either. Fast path: at an object boundary, each complete line is
// handed to JSON.parse as it is (a JSON encoder never writes a raw newline inside a value), so the
// common case (one event per line, whole lines per chunk) costs no character-by-character scan; a line
// that is not exactly one object falls back to the scanner from its start.
import { StringDecoder } from 'node:string_decoder';

export class JSONStreamDecoder {
  private readonly utf8 = new StringDecoder('utf8');
  private buf = '';
  /** scan position within buf */
  private pos = 0;
  private start = -1;
  private depth = 0;
  private inString = false;
  private escaped = false;

  /** Feeds a chunk; returns every object completed by it, in order. */
  push(chunk: Buffer | string): unknown[] {
    this.buf += typeof chunk === 'string' ? chunk : this.utf8.write(chunk);
    const out: unknown[] = [];
    if (this.depth === 0 && this.start < 0) {
      let from = 0;
      for (;;) {
        const nl = this.buf.indexOf('\n', from);
        if (nl < 0) break;
        const line = this.buf.slice(from, nl);
        if (line.trim() !== '') {
          let parsed: unknown;
          try { parsed = JSON.parse(line); } catch { break; }
          if (typeof parsed !== 'object' || parsed === null) break;
          out.push(parsed);
        }
        from = nl + 1;
      }
      if (from > 0) { this.buf = this.buf.slice(from); this.pos = 0; }
    }
    const s = this.buf;
    for (let i = this.pos; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c /* \ */) this.escaped = true;
        else if (c === 0x22 /* " */) this.inString = false;
        continue;
      }
      if (c === 0x22) { this.inString = true; continue; }
      if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        if (this.depth === 0) this.start = i;
        this.depth++;
      } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
        this.depth--;
        if (this.depth === 0) {
          out.push(JSON.parse(s.slice(this.start, i + 1)));
          this.start = -1;
        } else if (this.depth < 0) {
          throw new SyntaxError(`unexpected ${String.fromCharCode(c)} in watch stream`);
        }
      } else if (this.depth === 0 && c > 0x20) {
        throw new SyntaxError(`unexpected ${JSON.stringify(s[i])} between watch events`);
      }
    }
    // keep only the unfinished object
    if (this.start >= 0) {
      this.buf = s.slice(this.start);
      this.pos = this.buf.length;
      this.start = 0;
    } else {
      this.buf = '';
      this.pos = 0;
    }
    return out;
  }

  /** True when a partial object is buffered (the stream ended mid-object if this is true at end). */
  hasPartial(): boolean { return this.depth > 0 || this.buf.trim().length > 0; }
}
