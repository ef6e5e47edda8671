export { OpenLoopSchedule, senderOf, partnerOf } from './schedule';
export { defaultCriteria, judgeStep, nextRate, highestPassed, roundRate } from './steps';
export type {
  StepCriteria,
  StepVerdict,
  StepVerdictInput,
  LadderOptions,
  LadderEntry,
} from './steps';
export { spread, summarizeDurable1to1, renderDurable1to1Markdown, formatSpread } from './summary';
export type {
  Spread,
  StepResult,
  LatencySummary,
  CpuSeconds,
  Durable1to1Repeat,
  Durable1to1Summary,
  BareLimitResult,
  FsyncResult,
  RunInfo,
} from './summary';
export { startGenerator } from './loadgen/handle';
export type { GeneratorHandle } from './loadgen/handle';
export { runDurable1to1, defaultDurable1to1Options } from './workloads/durable-1to1';
export type { Durable1to1Options } from './workloads/durable-1to1';
export { parseStat } from './procstat';
export { startFleet } from './fleet/handle';
export type { FleetHandle } from './fleet/handle';
export { renderTable } from './workloads/common';
export type { Row, WorkloadOutput } from './workloads/common';
export { peakPerSecondBuckets } from './workloads/moving-users';
export { runIdle, defaultIdleOptions } from './workloads/idle';
export { runCrossNode, defaultCrossNodeOptions } from './workloads/cross-node';
export { runGroupFanout, defaultFanoutOptions } from './workloads/group-fanout';
export { runRebalance, defaultRebalanceOptions } from './workloads/rebalance';
export { runFailover, defaultFailoverOptions } from './workloads/failover';
export { runSoak, defaultSoakOptions } from './workloads/soak';
export type { SoakOptions, SoakMinute, SoakOutput } from './workloads/soak';
export { judgeFlat, leastSquaresSlope, judgedSpan } from './soak/flatness';
export type { FlatnessVerdict } from './soak/flatness';
export { renderPanels } from './soak/svg-plot';
export type { PanelSeries } from './soak/svg-plot';
export { soakSeries, renderSoakMarkdown, renderSoakSvg, verdictLines } from './soak/report';
export type { DbSizes } from './soak/pg-sizes';
