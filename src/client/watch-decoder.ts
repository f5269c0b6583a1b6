// Splits a watch response body (a stream of JSON objects, one per line as the API server writes
// them) into whole objects. Chunks may end anywhere: inside a string, between the bytes of one
// UTF-8 character, or in the middle of a line. The scanner tracks object depth and strings, so it
// does not depend on the newlines either.
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
