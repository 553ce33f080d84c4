// Placement in the host simulator: on every node the production placement controller
// (src/control/placement-controller.ts, its planner and view), polled on the node's simulated
// clock, acting while the node leads group 0, as in production. Its ports are the simulator's
// stand-ins for the member-only HTTP routes: a survey answers each node's report
// (nodeReportOf over its host's status, as GET /v1/internal/placement/report does) when the node
// runs, is not paused and no link between it and the meta leader is cut; a membership change or
// transfer runs at the group's leader's process. A node's registration and its group records go
// through the meta leader (`proposeAnywhere`), as a member forwards them.
//
// Node losses and joins: the seed's kills, power losses, pauses and partitions, with a grace
// period of 150-400 ms (kills last 10-610 ms, so some outlast it and the node's replicas are
// re-created elsewhere; when it returns it is drained or given replicas back by the balance);
// nodes 4 and 5 join during the fault phase (started then, and registered through a member).
//
// Checked:
//   - at every membership change the controller asks for, at the group's leader before it is
//     proposed: if the current voters have a majority of reachable nodes, so does every
//     configuration the change leads to (both halves of a joint one). Reachable: answered the
//     controller's last survey, what the planner knew. A node that fails after the survey, while
//     the change is on its way, is a fault, not the move's doing: counting it out (as this check
//     once did) blamed a replace planned with nodes 1, 3 and 5 live for node 5's crash 19 ms
//     later (seed 952);
//   - once the faults stop: every kv group converges to the replication factor (its leader's
//     configuration has exactly `factor` voters on registered nodes, no learners, no joint
//     configuration, and exactly those nodes host the group) and the meta model holds no move in
//     progress.
// Each node hosts only the groups placed on it: the production hosting loop
// (src/node/group-hosting.ts) starts and stops them (test/sim/host-simulator.ts checks each stop).
//
// Called by: test/sim/host-simulator.ts (runs with `placement`), through test/sim/host-control.ts.

import type { GroupId, NodeId } from '../../src/base/ids.ts';
import type { Rng } from '../../src/base/rng.ts';
import { encodeMetaCommand, type MetaCommand, type NodeRecord } from '../../src/codec/meta.ts';
import {
  configurationMoved,
  PlacementController,
  type PlacementEffect,
  type PlacementPorts,
} from '../../src/control/placement-controller.ts';
import { nodeReportOf, type NodeReport } from '../../src/control/placement-view.ts';
import { metaGroupId, type MetaModel, type MetaOutcome } from '../../src/models/meta.ts';
import type { MultiRaftHost } from '../../src/multiraft/host.ts';
import type { HostClock } from '../../src/multiraft/ports.ts';
import { applyConfChange } from '../../src/raft/confchange.ts';
import type { ConfChange } from '../../src/raft/types.ts';
import type { PlacementPlanner } from './placement-mutants.ts';
import type { EventQueue, SimProcess } from '../support/sim-time.ts';

/** The placement controller's poll on virtual time (production: 1 s; a simulated run lasts seconds). */
const placementPollMs = 20;
/** A port call (a stand-in for an HTTP request) gives up after this long. */
const portTimeoutMs = 300;
/** How often the operator (settings, registrations) looks at the meta leader's model. */
const operatorPollMs = 30;
/** The kv replication factor of every placement run. */
export const simReplicationFactor = 3;
/** After the faults stop, placement must converge within this long (then the run fails). */
export const placementSettleMsMax = 6000;

/** What the placement simulation needs of the cluster. */
export interface PlacementCluster {
  /** The node's running, unpaused host and process. */
  running(node: NodeId): { readonly host: MultiRaftHost; readonly process: SimProcess } | undefined;
  /** Messages pass both ways between the two nodes (no cut link). */
  linked(a: NodeId, b: NodeId): boolean;
  /** The live node leading group 0 in the highest term. */
  metaLeader(): NodeId | undefined;
  /** The meta model of the node's current life. */
  metaModel(node: NodeId): MetaModel | undefined;
  /** The nodes started at least once (joined the cluster). */
  joined(): readonly NodeId[];
  /**
   * A check failed inside a port call: the run fails after the event. (Thrown there, the failure
   * would reach the controller as a failed call, which it takes in its stride: until this, the
   * quorum check could not fail.)
   */
  violated(message: string): void;
}

export interface PlacementStats {
  movesStarted: number;
  movesFinished: number;
  movesCancelled: number;
  changesChecked: number;
  joins: number;
  /** Finished moves that replaced a node gone past the grace period (in the meta leader's history at the end). */
  goneReplaced: number;
  /** Replicas the nodes' hosting loops started (empty, caught up by their leader) and stopped (data deleted). */
  groupsStarted: number;
  groupsStopped: number;
}

export function registryRecord(node: NodeId): NodeRecord {
  return {
    id: node,
    address: { member: null, client: null, raft: null },
    agentVersion: 'sim',
    storeVersion: 'sim',
    attributes: {},
    status: 'ACTIVE',
  };
}

function majority(voters: readonly NodeId[], reachable: ReadonlySet<NodeId>): boolean {
  return voters.filter((node) => reachable.has(node)).length * 2 > voters.length;
}

/** The figures of a run before anything happened (and of a run without placement). */
export function noPlacementStats(): PlacementStats {
  return {
    movesStarted: 0,
    movesFinished: 0,
    movesCancelled: 0,
    changesChecked: 0,
    joins: 0,
    goneReplaced: 0,
    groupsStarted: 0,
    groupsStopped: 0,
  };
}

export class SimPlacement {
  readonly stats: PlacementStats = noPlacementStats();
  readonly graceMs: number;
  private readonly queue: EventQueue;
  private readonly cluster: PlacementCluster;
  private readonly controllers = new Map<NodeId, PlacementController>();
  /** Per controller (by its node), the nodes that answered its last survey. */
  private readonly surveyed = new Map<NodeId, ReadonlySet<NodeId>>();

  /** The planner the controllers run: the production one, unless a test injects a broken one (./placement-mutants.ts). */
  private readonly planner: PlacementPlanner | undefined;

  constructor(queue: EventQueue, rng: Rng, cluster: PlacementCluster, planner?: PlacementPlanner) {
    this.queue = queue;
    this.cluster = cluster;
    this.planner = planner;
    this.graceMs = 150 + rng.int(250);
  }

  /** Gives a node's new life its placement controller (it acts only while the node leads group 0). */
  attach(node: NodeId, host: MultiRaftHost, clock: HostClock, model: MetaModel, wallNowMs: () => number): void {
    const controller = new PlacementController({
      host,
      model,
      clock,
      wallNowMs,
      ports: this.portsOf(node),
      ...(this.planner === undefined ? {} : { plan: this.planner }),
      propose: async (command) => {
        const outcome = await host.propose(metaGroupId, encodeMetaCommand(command));
        return outcome.kind === 'applied' && (outcome.result as MetaOutcome).ok;
      },
      pollMs: placementPollMs,
      onMove: (event) => {
        if (event === 'started') this.stats.movesStarted++;
        else if (event === 'finished') this.stats.movesFinished++;
        else this.stats.movesCancelled++;
      },
    });
    this.controllers.set(node, controller);
    controller.start();
  }

  detach(node: NodeId): void {
    this.controllers.get(node)?.stop();
    this.controllers.delete(node);
    this.surveyed.delete(node);
  }

  /**
   * The operator, every operatorPollMs until `untilMs()`: records the grace period (the setting
   * PUT /v1/placement/settings records) and registers each node that joined and is not registered
   * yet (a joining node's member records it, as the join request does).
   */
  startOperator(untilMs: () => number): void {
    const step = (): void => {
      if (this.queue.now > untilMs()) return;
      this.queue.schedule(this.queue.now + operatorPollMs, step);
      const leader = this.cluster.metaLeader();
      const model = leader === undefined ? undefined : this.cluster.metaModel(leader);
      if (leader === undefined || model === undefined) return;
      if (model.placementSettings().nodeGoneGraceMs !== this.graceMs)
        void this.proposeAnywhere(leader, { type: 'placement.settings', settings: { nodeGoneGraceMs: this.graceMs } });
      for (const node of this.cluster.joined())
        if (model.node(node) === undefined) {
          void this.proposeAnywhere(leader, { type: 'node.upsert', node: registryRecord(node) });
          return;
        }
    };
    this.queue.schedule(this.queue.now + operatorPollMs, step);
  }

  /** Proposes a meta command at group 0's leader, as a member forwards it; true when applied with an ok outcome. */
  proposeAnywhere(from: NodeId, command: MetaCommand): Promise<boolean> {
    const leader = this.cluster.metaLeader();
    if (leader === undefined || !this.reaches(from, leader)) return Promise.resolve(false);
    return this.at(leader, false, async (host) => {
      const outcome = await host.propose(metaGroupId, encodeMetaCommand(command));
      return outcome.kind === 'applied' && (outcome.result as MetaOutcome).ok;
    });
  }

  private reaches(from: NodeId, to: NodeId): boolean {
    return this.cluster.running(to) !== undefined && (from === to || this.cluster.linked(from, to));
  }

  /** Runs `call` in `node`'s process (after a network hop), answering `fallback` if it dies or the call times out. */
  private at<T>(node: NodeId, fallback: T, call: (host: MultiRaftHost) => Promise<T> | T): Promise<T> {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (value: T): void => {
        if (settled) return;
        settled = true;
        resolve(value);
      };
      const target = this.cluster.running(node);
      if (target === undefined) {
        settle(fallback);
        return;
      }
      this.queue.schedule(this.queue.now + portTimeoutMs, () => {
        settle(fallback);
      });
      target.process.schedule(
        this.queue.now + 0.5,
        () => {
          if (this.cluster.running(node)?.process !== target.process) return;
          void Promise.resolve(call(target.host)).then(settle, () => {
            settle(fallback);
          });
        },
        'placement',
      );
    });
  }

  private portsOf(self: NodeId): PlacementPorts {
    const failed = (message: string): PlacementEffect => ({ ok: false, message });
    return {
      survey: async (nodes) => {
        const answers = await Promise.all(
          nodes.map((node) =>
            this.reaches(self, node)
              ? this.at<NodeReport | undefined>(node, undefined, (host) => nodeReportOf(node, host.status()))
              : Promise.resolve(undefined),
          ),
        );
        const reports = new Map<NodeId, NodeReport>();
        for (const report of answers) if (report !== undefined) reports.set(report.node, report);
        this.surveyed.set(self, new Set(reports.keys()));
        return reports;
      },
      confChange: (node, group, change, confIndex) => {
        if (node === 0 || !this.reaches(self, node)) return Promise.resolve(failed(`node ${node} unreachable`));
        return this.at(node, failed('no answer'), async (host) => {
          // As the node's route does (src/api/placement-routes.ts).
          const moved = configurationMoved(confIndex, host.groupStatus(group)?.confIndex ?? 0);
          if (moved !== undefined) return failed(moved);
          this.checkChange(self, node, group, change, host);
          const outcome = await host.proposeConfChange(group, change);
          return outcome.kind === 'applied' ? { ok: true } : failed(outcome.kind);
        });
      },
      transfer: (node, group, to) => {
        if (node === 0 || !this.reaches(self, node)) return Promise.resolve(failed(`node ${node} unreachable`));
        return this.at(node, failed('no answer'), (host) => {
          const result = host.transferLeadership(group, to);
          return result.kind === 'started' || result.kind === 'already_leader' ? { ok: true } : failed(result.kind);
        });
      },
    };
  }

  /** The safety check of a membership change the controller asks `leader` for (see the header). */
  private checkChange(
    controller: NodeId,
    leader: NodeId,
    group: GroupId,
    change: ConfChange,
    host: MultiRaftHost,
  ): void {
    const status = host.groupStatus(group)?.status;
    if (status === undefined || status.role !== 'leader') return; // refused by the host
    const conf = status.confState;
    const next = applyConfChange(conf, change);
    if (!next.ok) return; // refused by the core
    this.stats.changesChecked++;
    const surveyed = this.surveyed.get(controller) ?? new Set<NodeId>();
    const reachable = surveyed;
    const before = [conf.voters, conf.votersOutgoing].filter((voters) => voters.length > 0);
    if (!before.every((voters) => majority(voters, reachable))) return;
    const after = [next.confState.voters, next.confState.votersOutgoing].filter((voters) => voters.length > 0);
    for (const voters of after)
      if (!majority(voters, reachable))
        this.cluster.violated(
          `placement: group ${group} at node ${leader}: the change ${JSON.stringify(change.changes)} takes voters [${conf.voters.join(',')}] to [${voters.join(',')}] with only [${[...reachable].sort().join(',')}] reachable: fewer than a quorum`,
        );
  }

  /**
   * Whether placement has converged (undefined) or why not: every kv group's leader (the live one
   * of the highest term) has exactly `factor` voters, all registered, no learners, no joint
   * configuration, exactly those nodes host it (every node that joined runs, and a node removed
   * from the group stopped its replica), and the meta leader's model holds no move in progress.
   * Why not names every group that has not converged.
   */
  unsettled(groups: readonly GroupId[], model: MetaModel | undefined): string | undefined {
    if (model === undefined) return 'no meta leader';
    this.stats.goneReplaced = model
      .moveHistory()
      .filter((move) => move.outcome === 'finished' && / gone for /.test(move.reason)).length;
    const registered = new Set(model.nodes().map((node) => node.id));
    const moving = model.moves();
    const problems: string[] = [];
    for (const group of groups) {
      let conf:
        | { voters: readonly NodeId[]; learners: readonly NodeId[]; votersOutgoing: readonly NodeId[] }
        | undefined;
      let term = -1;
      let leader = 0;
      for (let node = 1 as NodeId; node <= 9; node++) {
        const status = this.cluster.running(node)?.host.groupStatus(group)?.status;
        if (status?.role === 'leader' && status.term > term) {
          term = status.term;
          conf = status.confState;
          leader = node;
        }
      }
      const hosting = this.cluster.joined().filter((node) => this.cluster.running(node)?.host.hosts(group) === true);
      const move = moving.find((candidate) => candidate.group === group);
      if (conf === undefined) {
        problems.push(`group ${group} has no leader (hosted on [${hosting.join(',')}])`);
        continue;
      }
      const describe = `group ${group} (leader ${leader}): voters [${conf.voters.join(',')}] learners [${conf.learners.join(',')}] outgoing [${conf.votersOutgoing.join(',')}], hosted on [${hosting.join(',')}]${move === undefined ? '' : `, move in progress ${JSON.stringify(move)}`}`;
      if (conf.voters.length !== simReplicationFactor || conf.learners.length > 0 || conf.votersOutgoing.length > 0)
        problems.push(describe);
      else if (!conf.voters.every((node) => registered.has(node)))
        problems.push(`${describe}: a voter is not registered`);
      // N copies: exactly the voters host the group (a node removed from it stopped its replica).
      else if (
        this.cluster.joined().some((node) => this.cluster.running(node) === undefined) ||
        hosting.join(',') !== [...conf.voters].sort((a, b) => a - b).join(',')
      )
        problems.push(`${describe}: not hosted by exactly its voters (or a node is not running)`);
      else if (move !== undefined) problems.push(describe);
    }
    if (problems.length === 0 && moving.length > 0) problems.push(`moves in progress: ${JSON.stringify(moving)}`);
    return problems.length === 0 ? undefined : problems.join('; ');
  }
}
