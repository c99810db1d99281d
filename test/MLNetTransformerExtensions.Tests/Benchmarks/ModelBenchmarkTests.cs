using MLNetTransformerExtensions.Benchmarks;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Training;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Benchmarks;

/// <summary>The benchmark's arithmetic (FLOP counts, presets, sequence limits, medians, memory readings) and its step profile.</summary>
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
        CollectionAssert.AreEqual(new[] { "bert-mini", "gpt2-mini", "nasbert-size" }, ModelBenchmark.PresetNames.ToArray());
    }

    [TestMethod]
    public void NasBertSizeMatchesMLNetsNasBertInParametersAndFlops()
    {
        var config = ModelBenchmark.Preset("nasbert-size")!;
        Assert.AreEqual((ModelFamily.Bert, 4, 192, 3, 384, 16384, 512), (config.Family, config.NumLayers, config.HiddenSize, config.NumHeads, config.IntermediateSize, config.VocabSize, config.MaxPositions));

        // ML.NET's NAS-BERT, counted from Microsoft.ML.TorchSharp's NasBert modules: 50265 × 64 token and (512 + 2) × 64
        // position embeddings, their LayerNorm, a 64 → 192 projection, 4 self-attention cells (q, k, v, out + LayerNorm),
        // 8 convolution cells (2 × depthwise k + pointwise 192×192, each with LayerNorm; kernels 3, 3, 3, 5, 7, 7, 7, 7), a 192 → 2 head.
        static long Conv(long k) => 2 * ((192 * k) + 192 + (192 * 192) + 192 + 384);
        var nasBert = (50265L * 64) + (514 * 64) + 128 + ((64 * 192) + 192) + (4 * ((4 * ((192 * 192) + 192)) + 384))
            + (3 * Conv(3)) + Conv(5) + (4 * Conv(7)) + ((192 * 2) + 2);
        Assert.AreEqual(4_475_522, nasBert);

        using var model = TransformerModels.CreateForSequenceClassification(config);
        var parameters = ModelBenchmark.CountParameters(model);
        Assert.AreEqual(4_470_338, parameters);
        Assert.IsTrue(Math.Abs(parameters - nasBert) < 0.01 * nasBert, "within 1 % of NAS-BERT's parameter count");

        // Matmul FLOPs per token without attention scores: NAS-BERT's 4 attention cells (4 projections of 192²) and 16
        // convolutions (pointwise 192² + depthwise 192·k) plus the 64 → 192 projection, against 4 BERT layers.
        var nasBertPerToken = (2.0 * 64 * 192) + (4 * 2.0 * 4 * 192 * 192) + (16 * 2.0 * 192 * 192) + (2.0 * 192 * ((6 * 3) + (2 * 5) + (8 * 7)));
        var perToken = ModelBenchmark.ForwardFlopsPerSequence(config, 1) - (4.0 * 192 * 4);
        Assert.AreEqual(2_359_296, perToken);
        Assert.IsTrue(Math.Abs(perToken - nasBertPerToken) < 0.03 * nasBertPerToken, $"{perToken} vs NAS-BERT's {nasBertPerToken}");
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

    [TestMethod]
    [DataRow(TrainingPrecision.Float32)]
    [DataRow(TrainingPrecision.BFloat16)]
    public void TheStepProfileNamesEveryPhaseInOrderAndLeavesAFloat32ModelInEvaluationMode(TrainingPrecision precision)
    {
        using var model = TransformerModels.CreateForSequenceClassification(ModelBenchmark.Preset("nasbert-size")!);
        var profile = ModelBenchmark.ProfileTraining(model, batchSize: 2, sequenceLength: 8, warmupSteps: 1, steps: 3, precision: precision);

        string[] expected = precision == TrainingPrecision.BFloat16
            ? ["forward pass", "loss (float32 cross-entropy)", "backward pass", "bf16 gradients into the float32 masters", "gradient clipping",
               "AdamW step and zero_grad", "masters rounded into the bf16 weights", "freeing the step's tensors"]
            : ["forward pass", "loss (float32 cross-entropy)", "backward pass", "gradient clipping", "AdamW step and zero_grad", "freeing the step's tensors"];
        CollectionAssert.AreEqual(expected, profile.Phases.Select(p => p.Phase).ToArray());
        Assert.AreEqual(3, profile.Steps.StepMilliseconds.Count);
        Assert.AreEqual(6, profile.LayerOperations.Count);
        Assert.IsTrue(profile.Phases.Concat(profile.LayerOperations).All(p => p.MedianMilliseconds >= 0 && double.IsFinite(p.MedianMilliseconds)));
        Assert.IsFalse(model.training);
        Assert.IsTrue(model.parameters().All(p => p.dtype == ScalarType.Float32));
    }
}
