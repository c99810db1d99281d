using MLNetTransformerExtensions.Runtime;
using MLNetTransformerExtensions.Tests.Training.Pretraining;
using MLNetTransformerExtensions.Tokenization;
using MLNetTransformerExtensions.Training;
using MLNetTransformerExtensions.Training.Pretraining;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Tests.Training;

/// <summary>
/// bfloat16 mixed-precision training on the tiny checkpoints: a step's loss and update against float32 on the same
/// batch, float32 weights after training, save and load, pretraining with checkpoints, Auto's choice from an injected
/// probe, and no tensor left behind.
/// </summary>
[TestClass]
public sealed class MixedPrecisionTests
{
    /// <summary>
    /// Largest allowed |loss_bf16 − loss_fp32| on one batch. bfloat16 keeps 8 significant bits (relative rounding error
    /// 2⁻⁹ ≈ 0.2 % per operation); through embeddings, two layers and the head of the tiny models the logits move by a
    /// few hundredths at most, and the cross-entropy of about ln 2 by less (measured: 0.0002 for BERT, 0.003 for GPT-2,
    /// whose gradients keep a cosine of 0.9997 or more with float32's).
    /// </summary>
    private const double LossTolerance = 0.03;

    private static readonly string[] Sentiments = ["negative", "positive"];

    private static readonly FineTuningOptions Fast = new() { Epochs = 1, BatchSize = 16, LearningRate = 1e-3, MaxLength = 32, Seed = 3 };

    private static LabeledTexts Rows(int count)
    {
        var data = SyntheticReviews.Binary(count, seed: 5);
        return new LabeledTexts(data.Texts, null, data.Labels);
    }

    /// <summary>The loss and the float32 gradients of one batch, in evaluation mode (no dropout), so both precisions see the same function.</summary>
    private static (double Loss, Dictionary<string, float[]> Gradients) OneBatch(HeadClassifier classifier, LabeledTexts rows, bool bfloat16)
    {
        ITrainableClassifier<EncodedText> trainable = classifier;
        var model = trainable.Module;
        using var mixed = bfloat16 ? new MixedPrecision(model) : null;
        mixed?.ToBFloat16();
        model.eval();
        double loss;
        using (NewDisposeScope())
        {
            var encoded = rows.Texts.Select(t => trainable.EncodeForTraining(t, null)).ToList();
            var value = trainable.Loss(encoded, [.. rows.Labels.Select(l => (long)l)]);
            Assert.AreEqual(ScalarType.Float32, value.dtype, "the loss is float32 in either precision");
            loss = value.item<float>();
            value.backward();
        }

        mixed?.CollectGradients();
        var parameters = mixed is null ? model.named_parameters().Select(p => (p.name, p.parameter)).ToList() : mixed.Decay.Concat(mixed.NoDecay).ToList();
        var gradients = new Dictionary<string, float[]>();
        foreach (var (name, parameter) in parameters)
        {
            using var gradient = parameter.grad;
            if (gradient is not null)
            {
                Assert.AreEqual(ScalarType.Float32, gradient.dtype, $"{name}: the optimizer sees float32 gradients");
                gradients[name] = gradient.data<float>().ToArray();
            }
        }

        model.zero_grad();
        return (loss, gradients);
    }

    [TestMethod]
    [DataRow("bert", ClassifierKind.Encoder)]
    [DataRow("gpt2", ClassifierKind.Decoder)]
    public void ABFloat16StepGivesTheFloat32LossAndGradientsWithinRounding(string family, ClassifierKind kind)
    {
        var rows = Rows(16);
        using var float32 = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", family), Sentiments, kind, 32, seed: 3, out _);
        using var bfloat16 = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", family), Sentiments, kind, 32, seed: 3, out _);
        var (loss32, gradients32) = OneBatch(float32, rows, bfloat16: false);
        var (loss16, gradients16) = OneBatch(bfloat16, rows, bfloat16: true);

        Assert.AreEqual(loss32, loss16, LossTolerance, $"{family}: loss fp32 {loss32:0.0000} vs bf16 {loss16:0.0000}");
        Assert.AreNotEqual(loss32, loss16, $"{family}: bfloat16 gave exactly the float32 loss, so it did not run in bfloat16");
        CollectionAssert.AreEquivalent(gradients32.Keys.ToList(), gradients16.Keys.ToList());
        // The whole gradient points the same way (bfloat16 rounds each entry; a direction survives that).
        var all32 = gradients32.OrderBy(g => g.Key, StringComparer.Ordinal).SelectMany(g => g.Value).ToArray();
        var all16 = gradients16.OrderBy(g => g.Key, StringComparer.Ordinal).SelectMany(g => g.Value).ToArray();
        Assert.IsGreaterThan(0.99, SentenceEncoderParityTests.Compare(all32, all16).Cosine, $"{family}: gradient direction");
    }

    [TestMethod]
    public void TrainingInBFloat16LeavesFloat32WeightsThatSaveAndLoad()
    {
        var rows = Rows(48);
        using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "bert"), Sentiments, ClassifierKind.Encoder, 32, seed: 3, out _);
        var before = classifier.Model.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone());
        try
        {
            FineTuner.Train(classifier, rows, rows, Fast with { Precision = TrainingPrecision.BFloat16, EarlyStoppingPatience = 1 });

            foreach (var (name, tensor) in classifier.Model.state_dict())
            {
                if (tensor.is_floating_point())
                {
                    Assert.AreEqual(ScalarType.Float32, tensor.dtype, $"{name} is float32 after bfloat16 training");
                }
            }

            Assert.IsTrue(classifier.Model.named_parameters().Any(p => !p.parameter.allclose(before[p.name], rtol: 0, atol: 0)), "training changed the weights");
        }
        finally
        {
            foreach (var tensor in before.Values)
            {
                tensor.Dispose();
            }
        }

        var folder = Path.Combine(Path.GetTempPath(), "mixed-precision-" + Guid.NewGuid().ToString("N"));
        try
        {
            classifier.Save(folder);
            using var loaded = HeadClassifier.Load(folder);
            var expected = classifier.PredictProbabilities(rows.Texts, null, 16).SelectMany(p => p).ToArray();
            CollectionAssert.AreEqual(expected, loaded.PredictProbabilities(rows.Texts, null, 16).SelectMany(p => p).ToArray(), "the saved model scores as the trained one");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>How much TorchSharp's live-tensor count grows over five training steps, the first two (AdamW's state) untimed.</summary>
    private static long LiveTensorGrowth(bool bfloat16)
    {
        var rows = Rows(16);
        using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "bert"), Sentiments, ClassifierKind.Encoder, 32, seed: 3, out _);
        ITrainableClassifier<EncodedText> trainable = classifier;
        var encoded = rows.Texts.Select(t => trainable.EncodeForTraining(t, null)).ToList();
        long[] labels = [.. rows.Labels.Select(l => (long)l)];
        using var mixed = bfloat16 ? new MixedPrecision(trainable.Module) : null;
        using var optimizer = mixed is null
            ? FineTuner.CreateOptimizer(trainable.Module, 1e-3, 0.01)
            : FineTuner.CreateOptimizer(mixed.Decay, mixed.NoDecay, 1e-3, 0.01);
        mixed?.ToBFloat16();
        trainable.Module.train();
        void Step()
        {
            using (NewDisposeScope())
            {
                trainable.Loss(encoded, labels).backward();
            }

            mixed?.CollectGradients();
            nn.utils.clip_grad_norm_(mixed?.Parameters ?? trainable.Module.parameters(), 1.0);
            optimizer.step();
            optimizer.zero_grad();
            mixed?.Refresh();
        }

        Step(); // the first step allocates AdamW's state and the masters' gradients
        Step();
        var live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var step = 0; step < 5; step++)
        {
            Step();
        }

        return DisposeScopeManager.Statistics.ThreadTotalLiveCount - live;
    }

    [TestMethod]
    public void BFloat16StepsLeaveNoMoreTensorsBehindThanFloat32Steps()
    {
        // Float32 steps already move TorchSharp's live count (measured: one per weight per step, from the optimizer's
        // calls); mixed precision's own tensors (gradients converted, masters copied back) must add nothing to that.
        Assert.AreEqual(LiveTensorGrowth(bfloat16: false), LiveTensorGrowth(bfloat16: true));
    }

    [TestMethod]
    public void PretrainingInBFloat16LowersTheLossAndResumesFromFloat32Checkpoints()
    {
        using var workspace = new PretrainingWorkspace();
        var options = PretrainingWorkspace.Options(PretrainingKind.Encoder) with { Steps = 12, CheckpointEvery = 4, Precision = TrainingPrecision.BFloat16 };
        var output = workspace.Output("bf16");
        using (var cancellation = new CancellationTokenSource())
        {
            var stopAt = new InPlaceProgress<PretrainingProgress>(p =>
            {
                if (p.Stage == PretrainingStage.Training && p.Step == 6)
                {
                    cancellation.Cancel();
                }
            });
            Assert.ThrowsExactly<OperationCanceledException>(() => Pretrainer.Train(workspace.Files, output, options, stopAt, cancellation.Token));
        }

        // The checkpoint is float32 whatever wrote it, so the run may resume in float32.
        using var resumed = Pretrainer.Train(workspace.Files, output, options with { Resume = true, Precision = TrainingPrecision.Float32 });
        Assert.AreEqual(6, resumed.ResumedFromStep);
        Assert.IsLessThan(resumed.InitialValidationLoss!.Value, resumed.ValidationLoss!.Value, "the loss fell");
        foreach (var (name, tensor) in resumed.Model.state_dict())
        {
            if (tensor.is_floating_point())
            {
                Assert.AreEqual(ScalarType.Float32, tensor.dtype, $"{name} is exported in float32");
            }
        }
    }

    [TestMethod]
    public void AutoChoosesBFloat16OnlyWhereTheProbeFindsItFaster()
    {
        var fast = new BFloat16Support(true, true, 200, 900);
        var slow = new BFloat16Support(true, false, 255, 140);
        var barely = new BFloat16Support(true, false, 200, 220);
        var probed = 0;
        Func<BFloat16Support> Probe(BFloat16Support result) => () =>
        {
            probed++;
            return result;
        };

        Assert.AreEqual(TrainingPrecision.BFloat16, TrainingPrecisions.Resolve(TrainingPrecision.Auto, Probe(fast), out var notice));
        Assert.IsNull(notice);
        Assert.AreEqual(TrainingPrecision.Float32, TrainingPrecisions.Resolve(TrainingPrecision.Auto, Probe(slow), out _));
        Assert.AreEqual(TrainingPrecision.Float32, TrainingPrecisions.Resolve(TrainingPrecision.Auto, Probe(barely), out _), "10 % faster is within the probe's noise");
        probed = 0;
        Assert.AreEqual(TrainingPrecision.Float32, TrainingPrecisions.Resolve(TrainingPrecision.Float32, Probe(fast), out notice));
        Assert.AreEqual(0, probed, "float32 measures nothing");
        Assert.IsNull(notice);
    }

    [TestMethod]
    public void ExplicitBFloat16OnASlowerCpuStillTrainsInBFloat16AndSaysSoOnce()
    {
        var slow = new BFloat16Support(true, false, 255, 140);
        TrainingPrecisions.ResetNotice();
        Assert.AreEqual(TrainingPrecision.BFloat16, TrainingPrecisions.Resolve(TrainingPrecision.BFloat16, () => slow, out var first));
        Assert.IsNotNull(first);
        StringAssert.Contains(first, "slower", StringComparison.Ordinal);
        Assert.AreEqual(TrainingPrecision.BFloat16, TrainingPrecisions.Resolve(TrainingPrecision.BFloat16, () => slow, out var second));
        Assert.IsNull(second, "the notice is given once per process");
        Assert.AreEqual(TrainingPrecision.BFloat16, TrainingPrecisions.Resolve(TrainingPrecision.BFloat16, () => new BFloat16Support(true, true, 200, 900), out var fast));
        Assert.IsNull(fast);
        TrainingPrecisions.ResetNotice();
    }

    [TestMethod]
    public void TheProbeMeasuresBothFormatsOnce()
    {
        var probe = BFloat16Support.Current;
        Assert.AreSame(probe, BFloat16Support.Current, "cached per process");
        Assert.IsGreaterThan(0.0, probe.Float32Gflops);
        Assert.IsGreaterThan(0.0, probe.BFloat16Gflops);
        Assert.AreEqual(probe.BFloat16Gflops / probe.Float32Gflops, probe.Speedup, 1e-12);
        StringAssert.Contains(probe.ToString(), "avx512_bf16", StringComparison.Ordinal);
    }
}
