// The ONNX export's index-sum variants, apart from onnx.ts so that command-line parsing does not load onnx-proto.
/**
 * How the SFR's "add each output into its target channel" is expressed (outputs of several groups may target one
 * channel and are then summed):
 *   conv     one dense 1x1 Conv from the SFR inputs to the target channels (group weights scattered into a dense,
 *            mostly-zero weight; duplicates summed), then Add. More multiply-adds, fewest ops.
 *   matmul   the official deploy graph: grouped Conv, then a dense 0/1 [targets x outputs] MatMul over channels, Add.
 *   scatter  grouped Conv, then ScatterElements(reduction add) of its outputs straight into the old features.
 *   gather   grouped Conv, then per multiplicity round a Gather of the outputs (with a zero channel for "none"),
 *            summed with Add.
 */
export const INDEX_SUM_VARIANTS = ['conv', 'matmul', 'scatter', 'gather'] as const;
export type IndexSumVariant = (typeof INDEX_SUM_VARIANTS)[number];
/**
 * The most robust choice measured (bench/README.md): fastest in onnxruntime-web by 1.2-2x, and tied with 'conv'
 * (within run-to-run noise) in native onnxruntime, where both are ~2x faster than the official 'matmul' form.
 */
export const DEFAULT_INDEX_SUM: IndexSumVariant = 'gather';
