export { Ring, buildRing, ringArcs, ringShares, movedUsers, MAX_WEIGHT } from './ring';
export type { RingArc, RingMember, RingOptions, RingShare, MovedUser } from './ring';
