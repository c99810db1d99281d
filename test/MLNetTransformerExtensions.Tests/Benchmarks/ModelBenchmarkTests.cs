using MLNetTransformerExtensions.Benchmarks;
using MLNetTransformerExtensions.Modeling;

namespace MLNetTransformerExtensions.Tests.Benchmarks;

/// <summary>The benchmark's arithmetic: FLOP counts, presets, sequence limits, medians, memory readings.</summary>
[TestClass]
public sealed class ModelBenchmarkTests
{
    [TestMethod]
    public void BertMiniForwardFlopsMatchTheFormulaWorkedByHand()
    {
        var config = ModelBenchmark.Preset("bert-mini")!;
        // projections 2·128·4·(4·256² + 2·256·1024) = 805,306,368; attention 4·128²·256·4 = 67,108,864
        Assert.AreEqual(872_415_232.0, ModelBenchmark.ForwardFlopsPerSequence(config, 128));
    }

    [TestMethod]
    public void PresetsHaveTheIssuesSizes()
    {
        var bert = ModelBenchmark.Preset("bert-mini")!;
        Assert.AreEqual((ModelFamily.Bert, 4, 256, 4, 1024, 30522), (bert.Family, bert.NumLayers, bert.HiddenSize, bert.NumHeads, bert.IntermediateSize, bert.VocabSize));
        var gpt2 = ModelBenchmark.Preset("gpt2-mini")!;
        Assert.AreEqual((ModelFamily.Gpt2, 4, 256, 4, 1024, 50257), (gpt2.Family, gpt2.NumLayers, gpt2.HiddenSize, gpt2.NumHeads, gpt2.IntermediateSize, gpt2.VocabSize));
        Assert.IsNull(ModelBenchmark.Preset("bert-base"));
        CollectionAssert.AreEqual(new[] { "bert-mini", "gpt2-mini" }, ModelBenchmark.PresetNames.ToArray());
    }

    [TestMethod]
    public void RobertaSequencesStopBeforeTheLastPositions()
    {
        var roberta = TransformerConfig.Parse(new System.Text.Json.Nodes.JsonObject { ["model_type"] = "roberta", ["max_position_embeddings"] = 514, ["pad_token_id"] = 1 });
        Assert.AreEqual(512, ModelBenchmark.MaxSequenceLength(roberta));
        Assert.AreEqual(1024, ModelBenchmark.MaxSequenceLength(ModelBenchmark.Preset("gpt2-mini")!));
    }

    [TestMethod]
    public void ThroughputUsesTheMedianStep()
    {
        var timings = new StepTimings(32, [100, 400, 200]);
        Assert.AreEqual(200, timings.MedianMilliseconds);
        Assert.AreEqual(160, timings.SequencesPerSecond, 1e-9);
        Assert.AreEqual(250, new StepTimings(1, [100, 400, 300, 200]).MedianMilliseconds);
        Assert.AreEqual(3000, new TokenizationTiming(10, 500, 3, 0.5).TokensPerSecond, 1e-9);
    }

    [TestMethod]
    public void MemoryReadingIsPositiveAndPeakIsAtLeastCurrent()
    {
        var memory = ProcessMemory.Read();
        Assert.IsTrue(memory.ResidentMegabytes > 0);
        Assert.IsTrue(memory.PeakResidentMegabytes >= memory.ResidentMegabytes);
    }
}
