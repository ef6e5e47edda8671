export { Ring, buildRing, ringShares, movedUsers, MAX_WEIGHT } from './ring';
export type { RingMember, RingOptions, RingShare, MovedUser } from './ring';
