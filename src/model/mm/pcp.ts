// The per-CPU page lists (struct per_cpu_pages) of the September 2025 series' allocator
// (./page-alloc.ts routes to it; src/model/asi25/pageblock.ts uses these lists): a freed block of
// order <= PAGE_ALLOC_COSTLY_ORDER goes to the freeing CPU's list for its freetype and order, the
// next allocation of that freetype and order on that CPU takes it back (last freed, first reused),
// and only what the lists give back reaches the buddy allocator's free lists. Patch 12 gives each
// sensitivity lists of its own (order_to_pindex); its patch 13 tests the index arithmetic
// (page_alloc_test.c's test_pindex_helpers, in test/asi25.test.ts).
//
// The kernel's constants are x86-64's with CONFIG_TRANSPARENT_HUGEPAGE: the model's allocations
// are never of HPAGE_PMD_ORDER, so the THP lists stay empty. Every model allocation is
// MIGRATE_UNMOVABLE (GFP_KERNEL's; the model has no movable or reclaimable memory).

import type { Memory } from './memory.ts';

export const MIGRATE_UNMOVABLE = 0;
export const MIGRATE_MOVABLE = 1;
export const MIGRATE_RECLAIMABLE = 2;
export const MIGRATE_PCPTYPES = 3;
export const PAGE_ALLOC_COSTLY_ORDER = 3;
/** MAX_PAGE_ORDER + 1. */
export const NR_PAGE_ORDERS = 11;
/** x86-64's PMD_SHIFT - PAGE_SHIFT. */
export const HPAGE_PMD_ORDER = 9;
const NR_PCP_THP = 2;
/** Per sensitivity (patch 11's note). */
const NR_LOWORDER_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1);
const NR_PCP_LISTS_PER_SENSITIVITY = NR_LOWORDER_PCP_LISTS + NR_PCP_THP;
/** With CONFIG_MITIGATION_ADDRESS_SPACE_ISOLATION (patch 12). */
export const NR_SENSITIVITIES = 2;
export const NR_PCP_LISTS = NR_PCP_LISTS_PER_SENSITIVITY * NR_SENSITIVITIES;

/** freetype_t (patches 11, 12): a migratetype and a sensitivity. */
export interface Freetype {
  readonly migratetype: number;
  readonly sensitive: boolean;
}

export function migrateToFreetype(migratetype: number, sensitive: boolean): Freetype {
  return { migratetype, sensitive };
}

/** pcp_allowed_order (6.x): the orders the per-CPU lists hold. */
export function pcpAllowedOrder(order: number): boolean {
  return order <= PAGE_ALLOC_COSTLY_ORDER || order === HPAGE_PMD_ORDER;
}

/** order_to_pindex (patch 12): the list of a freetype and an allowed order. */
export function orderToPindex(ft: Freetype, order: number): number {
  const pindexNs = order > PAGE_ALLOC_COSTLY_ORDER ? NR_LOWORDER_PCP_LISTS + (ft.migratetype === MIGRATE_MOVABLE ? 1 : 0) : MIGRATE_PCPTYPES * order + ft.migratetype;
  return NR_PCP_LISTS_PER_SENSITIVITY * (ft.sensitive ? 1 : 0) + pindexNs;
}

/** pindex_to_order (patch 12). */
export function pindexToOrder(pindex: number): number {
  const pindexNs = pindex % NR_PCP_LISTS_PER_SENSITIVITY;
  return pindexNs >= NR_LOWORDER_PCP_LISTS ? HPAGE_PMD_ORDER : Math.floor(pindexNs / MIGRATE_PCPTYPES);
}

/**
 * pcp->batch and pcp->high of the model's zone: zone_batchsize() gives a zone of fewer than 2^12
 * pages a batch of 1, and zone_highsize() keeps high at least batch << 2; the model keeps those
 * floors (6.x tunes high at run time; a tiny zone stays near them).
 */
const PCP_BATCH = 1;
const PCP_HIGH = PCP_BATCH << 2;

/**
 * Every CPU's lists: the first frame of each block, oldest first (list_add puts the newest at the
 * head, here the end). Which CPU's list holds a frame is Memory.pcpFrame, which the buddy
 * allocator's own search reads.
 */
export interface PcpLists {
  readonly lists: number[][][];
}

export function newPcpLists(cpus: number): PcpLists {
  return { lists: Array.from({ length: cpus }, () => Array.from({ length: NR_PCP_LISTS }, () => [])) };
}

export function clonePcpLists(p: PcpLists): PcpLists {
  return { lists: p.lists.map((l) => l.map((x) => [...x])) };
}

/** pcp->count: the pages the CPU's lists hold. */
export function pcpCount(p: PcpLists, cpu: number): number {
  return p.lists[cpu].reduce((n, list, pindex) => n + (list.length << pindexToOrder(pindex)), 0);
}

/** A block off a list: its frames are back in the free lists' view, or about to be handed out. */
function unlisted(m: Memory, pindex: number, first: number | undefined): number | undefined {
  if (first !== undefined) m.pcpFrame.fill(0, first, first + (1 << pindexToOrder(pindex)));
  return first;
}

/**
 * __rmqueue_pcplist: the head of the CPU's list. Undefined when the list is empty, where the kernel
 * calls rmqueue_bulk() for pcp->batch blocks from the free lists and hands out the first: with a
 * batch of 1, the block the caller takes from the free lists itself.
 */
export function rmqueuePcplist(p: PcpLists, m: Memory, cpu: number, pindex: number): number | undefined {
  return unlisted(m, pindex, p.lists[cpu][pindex].pop());
}

/**
 * free_unref_page_commit: the block goes to the head of the CPU's list; past pcp->high,
 * free_pcppages_bulk() gives the oldest blocks back to the buddy allocator, from this list on,
 * until the count is down to high - batch.
 */
export function freeToPcp(p: PcpLists, m: Memory, cpu: number, pindex: number, first: number): void {
  p.lists[cpu][pindex].push(first);
  m.pcpFrame.fill(cpu + 1, first, first + (1 << pindexToOrder(pindex)));
  if (pcpCount(p, cpu) < PCP_HIGH) return;
  for (let i = 0; pcpCount(p, cpu) > PCP_HIGH - PCP_BATCH; i = (i + 1) % NR_PCP_LISTS) {
    const oldest = (pindex + i) % NR_PCP_LISTS;
    unlisted(m, oldest, p.lists[cpu][oldest].shift());
  }
}

/** drain_all_pages(NULL): every CPU's lists back to the buddy allocator. False: they were empty. */
export function drainAllPages(p: PcpLists, m: Memory): boolean {
  if (p.lists.every((_, cpu) => pcpCount(p, cpu) === 0)) return false;
  for (const lists of p.lists) for (const l of lists) l.length = 0;
  m.pcpFrame.fill(0);
  return true;
}
