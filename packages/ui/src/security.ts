/**
 * Who may talk to the server, and how. On a loopback address anyone on this
 * machine may; on any other host a token is required (printed in the URL,
 * checked on every request). Requests must name this server as their Host
 * (no DNS rebinding), and every state-changing request must come from its
 * own pages (the Origin, or Sec-Fetch-Site, says so) or from a script that
 * sends no browser headers at all.
 */
import { timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';

export const TOKEN_COOKIE = 'ckpt_token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function sameSecret(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface Guard {
  /** The hosts this server answers to (`127.0.0.1:8080`, `localhost:8080`, ...). */
  hosts: () => Set<string>;
  /** Required off loopback. */
  token: string | undefined;
}

/** Refuses a request for another Host, and one without the token when a token is required. */
export function accessGuard(guard: Guard): MiddlewareHandler {
  return async (c, next) => {
    const host = c.req.header('host') ?? '';
    // With a token, the token is the defence (the server may be reached by any of the machine's names).
    if (!guard.token && !guard.hosts().has(host.toLowerCase())) {
      return c.text(`refused: this server answers to ${[...guard.hosts()][0]}, not ${host || 'no Host'}`, 421);
    }
    if (guard.token) {
      const query = c.req.query('token');
      const bearer = c.req.header('authorization')?.replace(/^Bearer\s+/i, '');
      const given = query ?? bearer ?? getCookie(c, TOKEN_COOKIE);
      if (!sameSecret(given, guard.token)) {
        return c.text('refused: this server needs its token (see the URL it printed: ?token=...)', 401);
      }
      if (query) setCookie(c, TOKEN_COOKIE, query, { httpOnly: true, sameSite: 'Strict', path: '/' });
    }
    await next();
  };
}

/** Refuses a state-changing request from another site (cross-site request forgery). */
export function sameOriginGuard(): MiddlewareHandler {
  return async (c, next) => {
    if (SAFE_METHODS.has(c.req.method)) return next();
    const origin = c.req.header('origin');
    const site = c.req.header('sec-fetch-site');
    // The page's own origin names the host the request was sent to (checked by accessGuard).
    const ownOrigin =
      origin !== undefined && origin !== 'null' && hostOf(origin) === (c.req.header('host') ?? '').toLowerCase();
    const crossSite = site !== undefined && site !== 'same-origin' && site !== 'none';
    if ((origin !== undefined && !ownOrigin) || crossSite) {
      return c.text(
        `refused: a ${c.req.method} from another origin (${origin ?? site}) cannot change anything here`,
        403,
      );
    }
    await next();
  };
}

function hostOf(origin: string): string {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return '';
  }
}
