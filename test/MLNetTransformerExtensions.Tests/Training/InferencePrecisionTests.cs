using MLNetTransformerExtensions.Tokenization;
using MLNetTransformerExtensions.Training;
using TorchSharp;

namespace MLNetTransformerExtensions.Tests.Training;

/// <summary>
/// bfloat16 scoring against float32 on the tiny checkpoints: agreement within a stated tolerance for every family and
/// both strategies, unchanged float32 weights on disk, a copy that follows training, and no native leak.
/// </summary>
[TestClass]
public sealed class InferencePrecisionTests
{
    /// <summary>
    /// Largest allowed |p_bf16 − p_fp32| of any class probability. bfloat16 keeps 8 significant bits (relative error
    /// 2⁻⁹ per rounding); over two layers the tiny random models move probabilities by at most 0.015 (measured).
    /// </summary>
    private const double ProbabilityTolerance = 0.03;

    /// <summary>Share of rows whose most probable class must not change (a nearly tied row may flip).</summary>
    private const double ArgmaxAgreement = 0.95;

    private static readonly string[] Sentiments = ["negative", "positive"];

    /// <summary>Sixty short reviews of many lengths, scored 16 to a batch, so batches are padded.</summary>
    private static List<string> Texts() => SyntheticReviews.ThreeClasses(60, seed: 3).Texts;

    private static void AssertAgree(float[][] float32, float[][] bfloat16, string what)
    {
        Assert.HasCount(float32.Length, bfloat16);
        var largest = 0.0;
        var agreeing = 0;
        for (var row = 0; row < float32.Length; row++)
        {
            Assert.IsFalse(bfloat16[row].Any(float.IsNaN), $"{what}: row {row} has NaN probabilities in bfloat16");
            Assert.AreEqual(1.0, bfloat16[row].Sum(), 1e-5, $"{what}: row {row} does not sum to 1");
            largest = Math.Max(largest, float32[row].Zip(bfloat16[row], (a, b) => (double)Math.Abs(a - b)).Max());
            agreeing += Argmax(float32[row]) == Argmax(bfloat16[row]) ? 1 : 0;
        }

        Assert.IsLessThanOrEqualTo(ProbabilityTolerance, largest, $"{what}: max |Δp| {largest}");
        Assert.IsGreaterThan(0.0, largest, $"{what}: bfloat16 gave exactly the float32 probabilities, so it did not run in bfloat16");
        Assert.IsGreaterThanOrEqualTo(ArgmaxAgreement, agreeing / (double)float32.Length, $"{what}: the prediction changed on {float32.Length - agreeing} of {float32.Length} rows");
    }

    private static int Argmax(float[] p) => Array.IndexOf(p, p.Max());

    [TestMethod]
    [DataRow("bert")]
    [DataRow("distilbert")]
    [DataRow("roberta")]
    [DataRow("gpt2")]
    public void AHeadClassifierInBFloat16AgreesWithFloat32(string family)
    {
        using var classifier = HeadClassifier.Load(TestPaths.Fixtures("hf-tiny", family));
        var texts = Texts();
        var float32 = classifier.PredictProbabilities(texts, null, batchSize: 16);

        classifier.InferencePrecision = InferencePrecision.BFloat16;
        AssertAgree(float32, classifier.PredictProbabilities(texts, null, batchSize: 16), family);
        Assert.IsTrue(classifier.HasInferenceCopy);

        // Back to float32: the copy is freed and the float32 probabilities come back exactly.
        classifier.InferencePrecision = InferencePrecision.Float32;
        Assert.IsFalse(classifier.HasInferenceCopy);
        CollectionAssert.AreEqual(float32.SelectMany(p => p).ToArray(), classifier.PredictProbabilities(texts, null, batchSize: 16).SelectMany(p => p).ToArray());
    }

    [TestMethod]
    public void SentencePairsAgreeToo()
    {
        using var classifier = HeadClassifier.Load(TestPaths.Fixtures("hf-tiny", "bert"));
        var texts = Texts();
        var second = texts.Select((t, i) => texts[(i + 7) % texts.Count]).ToList();
        var float32 = classifier.PredictProbabilities(texts, second, batchSize: 16);
        classifier.InferencePrecision = InferencePrecision.BFloat16;
        AssertAgree(float32, classifier.PredictProbabilities(texts, second, batchSize: 16), "bert pairs");
    }

    [TestMethod]
    [DataRow("bert", ClassifierKind.Encoder, false)]
    [DataRow("distilbert", ClassifierKind.Encoder, false)]
    [DataRow("roberta", ClassifierKind.Encoder, false)]
    [DataRow("gpt2", ClassifierKind.Decoder, false)]
    [DataRow("gpt2", ClassifierKind.Decoder, true)]
    public void APromptClassifierInBFloat16AgreesWithFloat32(string family, ClassifierKind kind, bool leftPadding)
    {
        using var classifier = PromptClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny-lm", family), Sentiments, kind, null, maxLength: 64, seed: 1, out _);
        classifier.Padding = leftPadding ? PaddingSide.Left : PaddingSide.Right;
        var texts = Texts();
        var float32 = classifier.PredictProbabilities(texts, null, batchSize: 16);

        classifier.InferencePrecision = InferencePrecision.BFloat16;
        AssertAgree(float32, classifier.PredictProbabilities(texts, null, batchSize: 16), $"prompt {family}{(leftPadding ? " left-padded" : string.Empty)}");
    }

    [TestMethod]
    public void MultiTokenLabelWordsAgreeToo()
    {
        // Words of several tokens take one sequence per distinct continuation, and sum their tokens' log-probabilities.
        var options = new PromptOptions { LabelWords = [" unaffordable", " transformers"] };
        using var classifier = PromptClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny-lm", "gpt2"), Sentiments, ClassifierKind.Decoder, options, maxLength: 64, seed: 1, out _);
        Assert.IsTrue(classifier.LabelWordTokenIds.Any(t => t.Count > 1), "the label words should split into several tokens");
        var texts = Texts();
        var float32 = classifier.PredictProbabilities(texts, null, batchSize: 16);
        classifier.InferencePrecision = InferencePrecision.BFloat16;
        AssertAgree(float32, classifier.PredictProbabilities(texts, null, batchSize: 16), "multi-token label words");
    }

    [TestMethod]
    public void SavingAfterBFloat16ScoringWritesTheSameFiles()
    {
        var before = TestPaths.NewTempDirectory();
        var after = TestPaths.NewTempDirectory();
        try
        {
            using (var classifier = HeadClassifier.Load(TestPaths.Fixtures("hf-tiny", "gpt2")))
            {
                classifier.Save(before);
                classifier.InferencePrecision = InferencePrecision.BFloat16;
                classifier.PredictProbabilities(Texts(), null, batchSize: 16);
                classifier.Save(after);
            }

            AssertSameFiles(before, after);
            Directory.Delete(before, recursive: true);
            Directory.Delete(after, recursive: true);
            Directory.CreateDirectory(before);
            Directory.CreateDirectory(after);

            // A calibrated prompt classifier also keeps its float32 calibration when it recalibrates in bfloat16 mode.
            var options = new PromptOptions { Calibrate = true };
            using (var prompt = PromptClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny-lm", "roberta"), Sentiments, ClassifierKind.Encoder, options, maxLength: 64, seed: 1, out _))
            {
                var demonstrations = new[] { new Demonstration("The plot was great.", null, 1) };
                prompt.SetDemonstrations(demonstrations);
                prompt.Save(before);
                prompt.InferencePrecision = InferencePrecision.BFloat16;
                prompt.PredictProbabilities(Texts(), null, batchSize: 16);
                prompt.SetDemonstrations(demonstrations);
                prompt.Save(after);
            }

            AssertSameFiles(before, after);
        }
        finally
        {
            Directory.Delete(before, recursive: true);
            Directory.Delete(after, recursive: true);
        }
    }

    private static void AssertSameFiles(string expectedFolder, string actualFolder)
    {
        var names = Directory.GetFiles(expectedFolder).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        CollectionAssert.AreEqual(names, Directory.GetFiles(actualFolder).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray());
        foreach (var name in names)
        {
            CollectionAssert.AreEqual(File.ReadAllBytes(Path.Combine(expectedFolder, name!)), File.ReadAllBytes(Path.Combine(actualFolder, name!)), $"{name} differs");
        }
    }

    [TestMethod]
    public void TrainingDropsTheCopySoBFloat16ScoresTheNewWeights()
    {
        var (texts, labels) = SyntheticReviews.Binary(48, seed: 5);
        var data = new LabeledTexts(texts, null, labels);
        using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "distilbert"), ["0", "1"], ClassifierKind.Encoder, 32, seed: 1, out _);
        classifier.InferencePrecision = InferencePrecision.BFloat16;
        var untrained = classifier.PredictProbabilities(texts, null, batchSize: 16);
        Assert.IsTrue(classifier.HasInferenceCopy);

        // Validation during training scores the float32 weights and makes no copy.
        FineTuner.Train(classifier, data, data, new FineTuningOptions { Epochs = 2, BatchSize = 16, LearningRate = 1e-3, Seed = 1 });
        Assert.IsFalse(classifier.HasInferenceCopy, "training must drop the stale bfloat16 copy");

        var trained = classifier.PredictProbabilities(texts, null, batchSize: 16);
        classifier.InferencePrecision = InferencePrecision.Float32;
        AssertAgree(classifier.PredictProbabilities(texts, null, batchSize: 16), trained, "after training");
        Assert.IsGreaterThan(0.1, untrained.Zip(trained, (a, b) => Math.Abs(a[1] - b[1])).Max(), "training should have moved the bfloat16 probabilities");
    }

    [TestMethod]
    public void TheCopyLeaksNothingAndGoesWithItsOwner()
    {
        var texts = Texts();
        var live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using (var classifier = HeadClassifier.Load(TestPaths.Fixtures("hf-tiny", "roberta")))
        {
            classifier.InferencePrecision = InferencePrecision.BFloat16;
            classifier.PredictProbabilities(texts, null, batchSize: 16);
            var withCopy = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            for (var pass = 0; pass < 3; pass++)
            {
                classifier.PredictProbabilities(texts, null, batchSize: 16);
            }

            Assert.AreEqual(withCopy, DisposeScopeManager.Statistics.ThreadTotalLiveCount, "live tensors grew while scoring in bfloat16");
        }

        using (var prompt = PromptClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny-lm", "bert"), Sentiments, ClassifierKind.Encoder, null, maxLength: 64, seed: 1, out _))
        {
            prompt.InferencePrecision = InferencePrecision.BFloat16;
            prompt.PredictProbabilities(texts, null, batchSize: 16);
            var withCopy = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            prompt.PredictProbabilities(texts, null, batchSize: 16);
            Assert.AreEqual(withCopy, DisposeScopeManager.Statistics.ThreadTotalLiveCount, "live tensors grew while scoring prompts in bfloat16");
        }

        Assert.AreEqual(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount, "disposing the classifiers must free their bfloat16 copies");
    }

    [TestMethod]
    public void MakingTheCopyLeavesTheGlobalGeneratorAlone()
    {
        using var classifier = HeadClassifier.Load(TestPaths.Fixtures("hf-tiny", "bert"));
        static float[] Draw()
        {
            using var values = torch.rand(4);
            return values.data<float>().ToArray();
        }

        torch.manual_seed(42);
        var expected = Draw();

        torch.manual_seed(42);
        classifier.InferencePrecision = InferencePrecision.BFloat16;
        classifier.PredictProbabilities(["a short text"], null);
        Assert.IsTrue(classifier.HasInferenceCopy);
        CollectionAssert.AreEqual(expected, Draw());
    }

    [TestMethod]
    public void AnUndefinedPrecisionIsRefused()
    {
        using var classifier = HeadClassifier.Load(TestPaths.Fixtures("hf-tiny", "bert"));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => classifier.InferencePrecision = (InferencePrecision)7);
        Assert.AreEqual(InferencePrecision.Float32, classifier.InferencePrecision);
    }
}
