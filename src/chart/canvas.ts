// A small RGB canvas for charts: filled rectangles, anti-aliased strokes (line
// segments with round ends) and text in our own font. Strokes are gathered
// in a coverage mask (one byte a pixel, the most coverage wins, so joints are
// not painted twice) and then laid onto the pixels in one colour. Memory: the
// pixels (3 bytes a pixel) and the mask (1 byte), nothing else that grows.

import type { Rgb } from '../util/png.js';
import { CAP_ROWS, glyph } from './font.js';

export type Color = readonly [number, number, number];

export interface TextStyle {
  /** Pixels from one dot of the font to the next: a capital letter is 6 × size tall. */
  size: number;
  color: Color;
  align?: 'left' | 'center' | 'right';
  /** Stroke width as a share of size (default 0.95). */
  weight?: number;
}

export class Canvas implements Rgb {
  readonly pixels: Uint8Array;
  private readonly mask: Uint8Array;
  // The part of the mask written since the last paint().
  private x0 = Infinity;
  private y0 = Infinity;
  private x1 = -Infinity;
  private y1 = -Infinity;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Color,
  ) {
    this.pixels = new Uint8Array(width * height * 3);
    this.mask = new Uint8Array(width * height);
    this.fillRect(0, 0, width, height, background);
  }

  /** Starts over on the same memory (a chart drawn after another reuses the first one's canvas). */
  clear(background: Color): this {
    this.mask.fill(0);
    for (let o = 0; o < this.pixels.length; o += 3) {
      this.pixels[o] = background[0];
      this.pixels[o + 1] = background[1];
      this.pixels[o + 2] = background[2];
    }
    this.x0 = this.y0 = Infinity;
    this.x1 = this.y1 = -Infinity;
    return this;
  }

  /** A rectangle on whole pixels (fractions rounded), clipped to the canvas; alpha 0..1 blends it over what is there. */
  fillRect(x: number, y: number, w: number, h: number, color: Color, alpha = 1): void {
    const xa = Math.max(0, Math.round(x));
    const ya = Math.max(0, Math.round(y));
    const xb = Math.min(this.width, Math.round(x + w));
    const yb = Math.min(this.height, Math.round(y + h));
    const a = Math.round(Math.min(1, Math.max(0, alpha)) * 255);
    for (let py = ya; py < yb; py++) {
      for (let px = xa; px < xb; px++) this.blend((py * this.width + px) * 3, color, a);
    }
  }

  /** Adds a segment from (ax, ay) to (bx, by), `width` pixels wide with round ends, to the mask. */
  segment(ax: number, ay: number, bx: number, by: number, width: number): void {
    const r = width / 2;
    const xa = Math.max(0, Math.floor(Math.min(ax, bx) - r - 1));
    const xb = Math.min(this.width - 1, Math.ceil(Math.max(ax, bx) + r + 1));
    const ya = Math.max(0, Math.floor(Math.min(ay, by) - r - 1));
    const yb = Math.min(this.height - 1, Math.ceil(Math.max(ay, by) + r + 1));
    if (xa > xb || ya > yb) return;
    const dx = bx - ax;
    const dy = by - ay;
    const len2 = dx * dx + dy * dy;
    for (let py = ya; py <= yb; py++) {
      const cy = py + 0.5;
      for (let px = xa; px <= xb; px++) {
        const cx = px + 0.5;
        // Distance from the pixel's centre to the segment.
        const t = len2 > 0 ? Math.min(1, Math.max(0, ((cx - ax) * dx + (cy - ay) * dy) / len2)) : 0;
        const ex = cx - (ax + t * dx);
        const ey = cy - (ay + t * dy);
        const cover = r + 0.5 - Math.sqrt(ex * ex + ey * ey);
        if (cover <= 0) continue;
        const v = cover >= 1 ? 255 : Math.round(cover * 255);
        const i = py * this.width + px;
        if (v > this.mask[i]!) this.mask[i] = v;
      }
    }
    this.x0 = Math.min(this.x0, xa);
    this.y0 = Math.min(this.y0, ya);
    this.x1 = Math.max(this.x1, xb);
    this.y1 = Math.max(this.y1, yb);
  }

  /** Lays what the mask holds onto the pixels in one colour, then clears the mask. */
  paint(color: Color, alpha = 1): void {
    if (this.x1 < this.x0) return;
    const k = Math.min(1, Math.max(0, alpha));
    for (let py = this.y0; py <= this.y1; py++) {
      for (let px = this.x0; px <= this.x1; px++) {
        const i = py * this.width + px;
        const m = this.mask[i]!;
        if (m === 0) continue;
        this.mask[i] = 0;
        this.blend(i * 3, color, k === 1 ? m : Math.round(m * k));
      }
    }
    this.x0 = this.y0 = Infinity;
    this.x1 = this.y1 = -Infinity;
  }

  /** A stroked line, painted at once. */
  line(ax: number, ay: number, bx: number, by: number, width: number, color: Color, alpha = 1): void {
    this.segment(ax, ay, bx, by, width);
    this.paint(color, alpha);
  }

  /** A horizontal dashed line on whole pixels. */
  dashed(x: number, y: number, w: number, color: Color, dash = 6, gap = 4, thickness = 2): void {
    for (let px = x; px < x + w; px += dash + gap) this.fillRect(px, y - thickness / 2, Math.min(dash, x + w - px), thickness, color);
  }

  /** Width in pixels of a text at a size. */
  static textWidth(text: string, size: number): number {
    let w = 0;
    for (const ch of text.normalize('NFC')) w += (glyph(ch).width + 1) * size;
    return Math.max(0, w - size);
  }

  /** Draws a text whose capitals stand on `baseline`; returns its width. */
  text(text: string, x: number, baseline: number, style: TextStyle): number {
    const { size } = style;
    const width = Canvas.textWidth(text, size);
    let left = style.align === 'right' ? x - width : style.align === 'center' ? x - width / 2 : x;
    // Dot centres: row 6 sits on the baseline, row 0 on the cap line.
    const top = baseline - (CAP_ROWS - 1) * size;
    const stroke = size * (style.weight ?? 0.95);
    for (const ch of text.normalize('NFC')) {
      const g = glyph(ch);
      for (const [c1, r1, c2, r2] of g.strokes) this.segment(left + c1 * size, top + r1 * size, left + c2 * size, top + r2 * size, stroke);
      left += (g.width + 1) * size;
    }
    this.paint(style.color);
    return width;
  }

  private blend(o: number, color: Color, a: number): void {
    const p = this.pixels;
    if (a >= 255) {
      p[o] = color[0];
      p[o + 1] = color[1];
      p[o + 2] = color[2];
      return;
    }
    p[o] = (p[o]! * (255 - a) + color[0] * a + 127) / 255;
    p[o + 1] = (p[o + 1]! * (255 - a) + color[1] * a + 127) / 255;
    p[o + 2] = (p[o + 2]! * (255 - a) + color[2] * a + 127) / 255;
  }
}
