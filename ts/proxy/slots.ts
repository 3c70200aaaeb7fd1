// The proxy's slot IDs. Like p11-kit-proxy's, they count up from 0x11 in module order and,
// within a module, in the order the module lists its slots; a slot keeps its ID while the
// module keeps listing it. Unlike p11-kit's, the counter lives as long as the proxy (not one
// initialization), so an ID that was retired (its slot vanished) is never handed out again.
import { asSlotId, type SlotId } from '../bridge/handles.js';
import type { Member } from './members.js';

export interface SlotRoute {
  /** The proxy's slot ID. */
  readonly id: SlotId;
  readonly member: Member;
  /** The module's own slot ID. */
  readonly real: SlotId;
  /** Set when the module stopped listing the slot (so a cached route is known stale). */
  retired: boolean;
}

const FIRST_ID = 0x11;

export class SlotTable {
  private next = FIRST_ID;
  private readonly byId = new Map<number, SlotRoute>();
  /** Per module, its live slots in the order it last listed them. */
  private readonly byMember = new Map<Member, Map<number, SlotRoute>>();

  /**
   * Records what a module lists now: known slots keep their IDs, new ones get the next IDs,
   * slots it no longer lists are retired. Returns its routes in its order.
   */
  update(member: Member, reals: readonly SlotId[]): SlotRoute[] {
    const before = this.byMember.get(member) ?? new Map<number, SlotRoute>();
    const now = new Map<number, SlotRoute>();
    for (const real of reals) {
      if (now.has(real)) continue; // a module listing a slot twice gets it once
      now.set(real, before.get(real) ?? this.assign(member, real));
    }
    for (const [real, route] of before) {
      if (now.has(real)) continue;
      this.byId.delete(route.id);
      route.retired = true;
    }
    this.byMember.set(member, now);
    return [...now.values()];
  }

  /** The module's live slots as last listed (empty before its first listing). */
  routesOf(member: Member): SlotRoute[] {
    return [...(this.byMember.get(member)?.values() ?? [])];
  }

  route(id: number): SlotRoute | undefined {
    return this.byId.get(id);
  }

  /** The live route of a module's slot, if it has one. */
  find(member: Member, real: number): SlotRoute | undefined {
    return this.byMember.get(member)?.get(real);
  }

  /** An ID for a slot that is already gone again (an event about it must still name something). */
  retiredId(): SlotId {
    return asSlotId(this.next++);
  }

  private assign(member: Member, real: SlotId): SlotRoute {
    const route: SlotRoute = { id: asSlotId(this.next++), member, real, retired: false };
    this.byId.set(route.id, route);
    return route;
  }
}
