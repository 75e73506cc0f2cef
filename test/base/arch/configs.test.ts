// The ImageNet configurations carry the official hyper-parameters of model/condensenetv2.py (cdnv2_a/b/c in
// github:jianghaojun/CondenseNetV2), written out here by hand from that file.
import t from 'tap';

import { CONFIGS, upgradeConfig, type ArchConfig } from '../../../base/arch/configs.js';

const OFFICIAL: Record<string, Record<string, unknown>> = {
  'cdnv2-a': { stages: [1, 1, 4, 6, 8], growth: [8, 8, 16, 32, 64], condense_factor: 8, trans_factor: 8, group_1x1: 8, group_3x3: 8, group_trans: 8, bottleneck: 4, last_se_reduction: 16, HS_start_block: 2, SE_start_block: 3, fc_channel: 828 },
  'cdnv2-b': { stages: [2, 4, 6, 8, 6], growth: [6, 12, 24, 48, 96], condense_factor: 6, trans_factor: 6, group_1x1: 6, group_3x3: 6, group_trans: 6, bottleneck: 4, last_se_reduction: 16, HS_start_block: 2, SE_start_block: 3, fc_channel: 1024 },
  'cdnv2-c': { stages: [4, 6, 8, 10, 8], growth: [8, 16, 32, 64, 128], condense_factor: 8, trans_factor: 8, group_1x1: 8, group_3x3: 8, group_trans: 8, bottleneck: 4, last_se_reduction: 16, HS_start_block: 2, SE_start_block: 3, fc_channel: 1024 },
};

function asOfficial(c: ArchConfig): Record<string, unknown> {
  return {
    stages: c.layers, growth: c.growth, condense_factor: c.condenseFactor, trans_factor: c.sfrFactor,
    group_1x1: c.group1x1, group_3x3: c.group3x3, group_trans: c.groupTrans, bottleneck: c.bottleneck,
    last_se_reduction: c.headSeReduction, HS_start_block: c.hsStartBlock, SE_start_block: c.seStartBlock, fc_channel: c.fcChannels,
  };
}

t.test('CondenseNetV2-A/B/C match the official configurations', async (t) => {
  for (const [name, want] of Object.entries(OFFICIAL)) {
    const c = CONFIGS[name]!;
    t.same(asOfficial(c), want, name);
    // Fixed in CondenseNetV2.__init__: stem 2*growth[0] channels, stride 2 on ImageNet, SE reduction 1 in layers.
    t.same([c.stemChannels, c.stemStride, c.seReduction, c.classes, c.input.height], [2 * c.growth[0]!, 2, 1, 1000, 224], `${name} fixed parts`);
  }
});

t.test('a configuration saved with one group count reads as three', async (t) => {
  const { group1x1, group3x3, groupTrans, ...old } = CONFIGS['cdnv2-fmnist']!;
  t.same([group1x1, group3x3, groupTrans], [4, 4, 4]);
  const up = upgradeConfig({ ...old, groups: 4 } as unknown as ArchConfig);
  t.same([up.group1x1, up.group3x3, up.groupTrans], [4, 4, 4]);
  t.notOk('groups' in up, 'the old field is gone');
});
