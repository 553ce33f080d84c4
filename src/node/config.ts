// A node's configuration: from command-line flags, a JSON file (--config), and DRAM_* environment
// variables, in that order of precedence (flag > env > file > default). Validated once here; a bad
// value is a clear error naming the setting, and nothing starts. A node either creates the cluster
// (--init, with --peers) or joins a running one through any member (--join http://member), never
// both. The peer secret has no default: anyone who knows it can act as a member, so a node refuses
// to start without one (--secret, DRAM_SECRET or the file) unless --insecure-dev-secret asks, in so
// many words, for the built-in one that everybody knows.

import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { asGroupId, asNodeId, type GroupId, type NodeId } from '../base/ids.ts';
import {
  clientConnectionsMax,
  clientConnectionsPerAddressMax,
  clientIdleMs,
  clientInFlightMax,
  clientPartialFrameMs,
  clientUnsentBytesMax,
} from '../api/binary-server.ts';
import { snapshotTailEntriesMax } from '../raft/config.ts';
import { secretCharsMin } from '../transport/peer-options.ts';
import { lazyLimitsDefault } from '../data/lazy-cache.ts';

/** The secret --insecure-dev-secret uses: public, so for local trials only. */
export const insecureDevSecret = 'dram-insecure-development-secret';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface NodeConfig {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  readonly dataDir: string;
  readonly http: HostPort;
  readonly raft: HostPort;
  /** Binary client protocol address (--client); no binary server when absent. */
  readonly client?: HostPort;
  /** Raft peer addresses, this node included (from --peers). */
  readonly peers: ReadonlyMap<NodeId, HostPort>;
  /** HTTP addresses of the peers, for forwarding requests to a group's leader (--peer-http). */
  readonly peerHttp: ReadonlyMap<NodeId, HostPort>;
  /** Create the groups on first start (ignored when the data dir already holds them). */
  readonly init: boolean;
  /** A member's HTTP URL to join the cluster through on first start (src/node/membership.ts); exclusive with `init`. */
  readonly join?: string;
  readonly kvGroups: readonly GroupId[];
  readonly secret: string;
  readonly tickMs: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  readonly requestTimeoutMs: number;
  readonly proposalQueueMax: number;
  readonly snapshotIntervalEntries: number;
  /** Log entries kept behind each snapshot for followers a little behind (--snapshot-tail-entries). */
  readonly snapshotTailEntries: number;
  /**
   * Node-wide limits on sending snapshots to followers (src/multiraft/snapshot-send-limiter.ts):
   * bytes of InstallSnapshot chunks per second over every group, and transfers at once (0: no limit).
   */
  readonly snapshotSendBytesPerSecMax: number;
  readonly snapshotSendsMax: number;
  readonly leaseReads: boolean;
  /** A group idle this many ticks goes quiet: no ticks, no heartbeats (0: never). */
  readonly quiesceAfterTicks: number;
  /** Binary client port limits (src/api/binary-server.ts); from the config file or DRAM_CLIENT_* variables. */
  readonly clientLimits: ClientPortLimits;
  /** The HTTP API's tokens (--token, --read-token; src/api/auth.ts); no token: no authentication. */
  readonly token?: string;
  readonly readToken?: string;
  /** TLS (--tls-cert, --tls-key, --tls-ca): PEM texts read at start. */
  readonly tls?: TlsFiles;
  /** `json` (default, one JSON object a line, for production) or `pretty` (readable lines; `dram dev`; needs the pino-pretty dev dependency). */
  readonly logFormat: 'json' | 'pretty';
  /** Where databases and backups are read from and written to (--s3-endpoint, --s3-region, --s3-path-style). */
  readonly s3: S3Location;
  /** The query endpoint modules' directory (--endpoints, docs/endpoints.md), absolute; none: no endpoint. */
  readonly endpoints?: string;
  /** Bytes of lazy databases' data files kept on disk (--lazy-cache-bytes, docs/databases.md). */
  readonly lazyCacheBytes: number;
  /** Configuration backup (--backup s3://bucket/prefix; src/data/config-backup.ts); off when absent. */
  readonly backup?: ConfigBackupTarget;
}

export interface ConfigBackupTarget {
  readonly bucket: string;
  /** Without a trailing slash; empty: the bucket's root. */
  readonly prefix: string;
  /** Objects kept (--backup-keep), the debounce after a change and the interval (backupDebounceMs, backupIntervalMs). */
  readonly keep: number;
  readonly debounceMs: number;
  readonly intervalMs: number;
}

/** The S3 service; credentials are not here: they come from the AWS SDK's standard chain. */
export interface S3Location {
  /** An S3-compatible server's base URL; absent: AWS S3 itself. */
  readonly endpoint?: string;
  readonly region: string;
  /** Address buckets as `endpoint/bucket/key` (what most S3-compatible servers need). */
  readonly pathStyle: boolean;
}

/**
 * With cert and key the HTTP API serves HTTPS; with the CA too, peer connections are mutual TLS
 * (each side's certificate must chain to the CA) and forwarding checks members' HTTPS against it.
 */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca?: string;
}

/** A token shorter than this is a configuration error (like the peer secret). */
export const tokenCharsMin = 16;

export interface ClientPortLimits {
  readonly connectionsMax: number;
  readonly connectionsPerAddressMax: number;
  readonly inFlightMax: number;
  readonly unsentBytesMax: number;
  readonly idleMs: number;
  readonly partialFrameMs: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'DRAM_ERR_CONFIG';
}

export type RawConfig = Record<string, string | boolean | number | undefined>;

const defaults = {
  clusterId: 'dram',
  tickMs: 10,
  electionTimeoutTicks: 25,
  heartbeatTicks: 5,
  requestTimeoutMs: 5000,
  proposalQueueMax: 10_000,
  snapshotIntervalEntries: 50_000,
  snapshotTailEntries: 5_000,
  // Off by default: one transfer at full speed catches a follower up soonest on an idle network.
  // docs/deploy.md discusses production values (a share of the link, a few transfers at once).
  snapshotSendBytesPerSecMax: 0,
  snapshotSendsMax: 0,
  kvGroups: 8,
  leaseReads: false,
  quiesceAfterTicks: 100,
  s3Region: 'us-east-1',
  backupKeep: 24,
  backupDebounceMs: 2_000,
  backupIntervalMs: 3_600_000,
};

/** Merges file, environment and flags (highest last) into one raw map keyed by camelCase names. */
export function mergeSources(flags: RawConfig, env: NodeJS.ProcessEnv): RawConfig {
  const fromFile: RawConfig = typeof flags['config'] === 'string' ? readConfigFile(flags['config']) : {};
  const fromEnv: RawConfig = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('DRAM_') || value === undefined) continue;
    fromEnv[
      name
        .slice(5)
        .toLowerCase()
        .replace(/_([a-z])/gu, (_, c: string) => c.toUpperCase())
    ] = value;
  }
  const merged: RawConfig = { ...fromFile, ...fromEnv };
  for (const [name, value] of Object.entries(flags)) if (value !== undefined) merged[name] = value;
  return merged;
}

function readConfigFile(path: string): RawConfig {
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new ConfigError(`${path}: expected a JSON object`);
    return parsed as RawConfig;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`--config ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export function parseHostPort(text: string, what: string): HostPort {
  const match = /^(.+):(\d{1,5})$/u.exec(text.trim());
  const port = Number(match?.[2]);
  if (match?.[1] === undefined || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new ConfigError(`${what}: expected host:port, got "${text}"`);
  return { host: match[1], port };
}

export function parsePeerList(text: string, what: string): Map<NodeId, HostPort> {
  const peers = new Map<NodeId, HostPort>();
  for (const item of text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)) {
    const [id, address] = item.split('=');
    const nodeId = Number(id);
    if (address === undefined || !Number.isSafeInteger(nodeId) || nodeId < 1)
      throw new ConfigError(`${what}: expected id=host:port, got "${item}"`);
    if (peers.has(asNodeId(nodeId))) throw new ConfigError(`${what}: node ${nodeId} listed twice`);
    peers.set(asNodeId(nodeId), parseHostPort(address, `${what} ${id}`));
  }
  return peers;
}

/** `--join`: the base URL of a member's HTTP API (http or https, no query or fragment). */
export function parseJoinUrl(text: string): string {
  return parseBaseUrl(text, 'join', "a member's URL such as http://10.0.0.1:8081");
}

/** `--s3-endpoint`: an S3-compatible server's base URL (credentials go in the AWS chain, not here). */
export function parseS3Endpoint(text: string): string {
  return parseBaseUrl(text, 's3Endpoint', 'a URL such as http://127.0.0.1:4568');
}

/** An http or https base URL without query, fragment or credentials, trailing slashes removed. */
function parseBaseUrl(text: string, name: string, expected: string): string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new ConfigError(`${name}: expected ${expected}, got "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ConfigError(`${name}: expected an http:// or https:// URL, got "${text}"`);
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '')
    throw new ConfigError(`${name}: expected a plain base URL (no query, fragment or credentials), got "${text}"`);
  return url.origin + url.pathname.replace(/\/+$/u, '');
}

/** `--backup s3://bucket/prefix`: where the configuration backup goes. */
function resolveBackup(raw: RawConfig): { backup?: ConfigBackupTarget } {
  const where = text(raw, 'backup');
  if (where === undefined) return {};
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/u.exec(where);
  if (match?.[1] === undefined) throw new ConfigError(`backup: expected s3://bucket/prefix, got "${where}"`);
  return {
    backup: {
      bucket: match[1],
      prefix: (match[2] ?? '').replace(/\/+$/u, ''),
      keep: positive(raw, 'backupKeep', defaults.backupKeep),
      debounceMs: positive(raw, 'backupDebounceMs', defaults.backupDebounceMs),
      intervalMs: positive(raw, 'backupIntervalMs', defaults.backupIntervalMs),
    },
  };
}

export function resolveS3(raw: RawConfig): S3Location {
  const endpoint = text(raw, 's3Endpoint');
  const region = text(raw, 's3Region') ?? defaults.s3Region;
  if (!/^[a-z0-9-]{1,64}$/u.test(region)) throw new ConfigError(`s3Region: expected a region name, got "${region}"`);
  return {
    ...(endpoint === undefined ? {} : { endpoint: parseS3Endpoint(endpoint) }),
    region,
    pathStyle: flag(raw, 's3PathStyle', false),
  };
}

function positive(raw: RawConfig, name: string, fallback: number): number {
  const value = raw[name] === undefined ? fallback : Number(raw[name]);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new ConfigError(`${name}: expected a positive integer, got "${String(raw[name])}"`);
  return value;
}

function nonNegative(raw: RawConfig, name: string, fallback: number): number {
  const value = raw[name] === undefined ? fallback : Number(raw[name]);
  if (!Number.isSafeInteger(value) || value < 0)
    throw new ConfigError(`${name}: expected an integer >= 0, got "${String(raw[name])}"`);
  return value;
}

type SnapshotSettings = Pick<
  NodeConfig,
  'snapshotIntervalEntries' | 'snapshotTailEntries' | 'snapshotSendBytesPerSecMax' | 'snapshotSendsMax'
>;

function resolveSnapshots(raw: RawConfig): SnapshotSettings {
  const snapshotTailEntries = nonNegative(raw, 'snapshotTailEntries', defaults.snapshotTailEntries);
  if (snapshotTailEntries > snapshotTailEntriesMax)
    throw new ConfigError(`snapshotTailEntries: at most ${snapshotTailEntriesMax}, got ${snapshotTailEntries}`);
  return {
    snapshotIntervalEntries: positive(raw, 'snapshotIntervalEntries', defaults.snapshotIntervalEntries),
    snapshotTailEntries,
    snapshotSendBytesPerSecMax: nonNegative(raw, 'snapshotSendBytesPerSecMax', defaults.snapshotSendBytesPerSecMax),
    snapshotSendsMax: nonNegative(raw, 'snapshotSendsMax', defaults.snapshotSendsMax),
  };
}

function text(raw: RawConfig, name: string): string | undefined {
  const value = raw[name];
  return value === undefined ? undefined : String(value);
}

function resolveSecret(raw: RawConfig): string {
  const secret = text(raw, 'secret');
  const insecure = flag(raw, 'insecureDevSecret', false);
  if (secret !== undefined && insecure)
    throw new ConfigError('secret and insecureDevSecret: give a secret or ask for the insecure one, not both');
  if (secret === undefined && !insecure)
    throw new ConfigError(
      'secret: required (--secret, DRAM_SECRET or the config file); --insecure-dev-secret uses a public one, for local trials only',
    );
  if (secret !== undefined && secret.length < secretCharsMin)
    throw new ConfigError(`secret: must be at least ${secretCharsMin} characters, got ${secret.length}`);
  return secret ?? insecureDevSecret;
}

function resolveTokens(raw: RawConfig): Pick<NodeConfig, 'token' | 'readToken'> {
  const token = text(raw, 'token');
  const readToken = text(raw, 'readToken');
  if (readToken !== undefined && token === undefined)
    throw new ConfigError('readToken: needs --token too (the read token only narrows what a caller may do)');
  for (const [name, value] of [
    ['token', token],
    ['readToken', readToken],
  ] as const) {
    if (value !== undefined && (value.length < tokenCharsMin || /\s/u.test(value)))
      throw new ConfigError(`${name}: must be at least ${tokenCharsMin} characters, without spaces`);
  }
  if (token !== undefined && token === readToken) throw new ConfigError('readToken: must differ from token');
  return { ...(token === undefined ? {} : { token }), ...(readToken === undefined ? {} : { readToken }) };
}

function readPem(raw: RawConfig, name: string, flagName: string): string | undefined {
  const path = text(raw, name);
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`${flagName} ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function resolveTls(raw: RawConfig): Pick<NodeConfig, 'tls'> {
  const cert = readPem(raw, 'tlsCert', '--tls-cert');
  const key = readPem(raw, 'tlsKey', '--tls-key');
  const ca = readPem(raw, 'tlsCa', '--tls-ca');
  if (cert === undefined && key === undefined) {
    if (ca !== undefined) throw new ConfigError('tlsCa: needs --tls-cert and --tls-key too');
    return {};
  }
  if (cert === undefined || key === undefined) throw new ConfigError('tlsCert and tlsKey: give both or neither');
  return { tls: { cert, key, ...(ca === undefined ? {} : { ca }) } };
}

function logFormatOf(raw: RawConfig): NodeConfig['logFormat'] {
  const format = text(raw, 'logFormat') ?? 'json';
  if (format !== 'json' && format !== 'pretty')
    throw new ConfigError(`logFormat: expected json or pretty, got "${format}"`);
  return format;
}

function flag(raw: RawConfig, name: string, fallback: boolean): boolean {
  const value = raw[name];
  if (value === undefined) return fallback;
  if (value === true || value === 'true' || value === '1') return true;
  if (value === false || value === 'false' || value === '0') return false;
  throw new ConfigError(`${name}: expected true or false, got "${String(value)}"`);
}

export function resolveConfig(raw: RawConfig): NodeConfig {
  const nodeId = positive(raw, 'nodeId', 0);
  const dataDir = text(raw, 'dataDir');
  if (dataDir === undefined) throw new ConfigError('dataDir: required (--data-dir)');
  const httpText = text(raw, 'http');
  const raftText = text(raw, 'raft');
  if (httpText === undefined) throw new ConfigError('http: required (--http host:port)');
  if (raftText === undefined) throw new ConfigError('raft: required (--raft host:port)');
  const raft = parseHostPort(raftText, 'raft');
  const peers = parsePeerList(text(raw, 'peers') ?? '', 'peers');
  if (peers.size === 0) peers.set(asNodeId(nodeId), raft);
  if (!peers.has(asNodeId(nodeId))) throw new ConfigError(`peers: must include this node (${nodeId})`);
  const groupCount = positive(raw, 'kvGroups', defaults.kvGroups);
  const clientText = text(raw, 'client');
  const joinText = text(raw, 'join');
  const init = flag(raw, 'init', false);
  if (init && joinText !== undefined)
    throw new ConfigError(
      'init and join: a node either creates the cluster (--init) or joins a running one (--join), not both',
    );
  const config: NodeConfig = {
    nodeId: asNodeId(nodeId),
    clusterId: text(raw, 'clusterId') ?? defaults.clusterId,
    dataDir,
    http: parseHostPort(httpText, 'http'),
    raft,
    ...(clientText === undefined ? {} : { client: parseHostPort(clientText, 'client') }),
    peers,
    peerHttp: parsePeerList(text(raw, 'peerHttp') ?? '', 'peerHttp'),
    init,
    ...(joinText === undefined ? {} : { join: parseJoinUrl(joinText) }),
    kvGroups: Array.from({ length: groupCount }, (_, k) => asGroupId(k + 1)),
    secret: resolveSecret(raw),
    tickMs: positive(raw, 'tickMs', defaults.tickMs),
    electionTimeoutTicks: positive(raw, 'electionTimeoutTicks', defaults.electionTimeoutTicks),
    heartbeatTicks: positive(raw, 'heartbeatTicks', defaults.heartbeatTicks),
    requestTimeoutMs: positive(raw, 'requestTimeoutMs', defaults.requestTimeoutMs),
    proposalQueueMax: positive(raw, 'proposalQueueMax', defaults.proposalQueueMax),
    ...resolveSnapshots(raw),
    leaseReads: flag(raw, 'leaseReads', defaults.leaseReads),
    quiesceAfterTicks:
      raw['quiesceAfterTicks'] === '0' || raw['quiesceAfterTicks'] === 0
        ? 0
        : positive(raw, 'quiesceAfterTicks', defaults.quiesceAfterTicks),
    clientLimits: {
      connectionsMax: positive(raw, 'clientConnectionsMax', clientConnectionsMax),
      connectionsPerAddressMax: positive(raw, 'clientConnectionsPerAddressMax', clientConnectionsPerAddressMax),
      inFlightMax: positive(raw, 'clientInFlightMax', clientInFlightMax),
      unsentBytesMax: positive(raw, 'clientUnsentBytesMax', clientUnsentBytesMax),
      idleMs: positive(raw, 'clientIdleMs', clientIdleMs),
      partialFrameMs: positive(raw, 'clientPartialFrameMs', clientPartialFrameMs),
    },
    s3: resolveS3(raw),
    lazyCacheBytes: positive(raw, 'lazyCacheBytes', lazyLimitsDefault.cacheBytesMax),
    ...(text(raw, 'endpoints') === undefined ? {} : { endpoints: resolvePath(text(raw, 'endpoints') ?? '') }),
    ...resolveBackup(raw),
    ...resolveTokens(raw),
    ...resolveTls(raw),
    logFormat: logFormatOf(raw),
  };
  if (config.clientLimits.connectionsPerAddressMax > config.clientLimits.connectionsMax)
    throw new ConfigError('clientConnectionsPerAddressMax must be at most clientConnectionsMax');
  if (config.heartbeatTicks >= config.electionTimeoutTicks)
    throw new ConfigError('heartbeatTicks must be below electionTimeoutTicks');
  if (config.quiesceAfterTicks > 0 && config.quiesceAfterTicks < config.heartbeatTicks)
    throw new ConfigError('quiesceAfterTicks must be 0 (never) or at least heartbeatTicks');
  return config;
}
