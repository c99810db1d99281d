using MLNetTransformerExtensions.Training;
using TorchSharp;

namespace MLNetTransformerExtensions.Tests.Training;

[TestClass]
public sealed class FineTunerTests
{
    private static readonly FineTuningOptions Fast = new() { Epochs = 20, BatchSize = 16, LearningRate = 1e-3, WarmupRatio = 0.1, MaxLength = 32, Seed = 3 };

    private static double TrainAccuracy(string family, ClassifierKind kind, (List<string> Texts, List<int> Labels) data, string[] labels, FineTuningOptions options)
    {
        using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", family), labels, kind, options.MaxLength, options.Seed, out _);
        var rows = new LabeledTexts(data.Texts, null, data.Labels);
        FineTuner.Train(classifier, rows, null, options);
        return FineTuner.Evaluate(classifier, rows, 64).Accuracy;
    }

    [TestMethod]
    [TestCategory("Slow")]
    [DataRow("bert", ClassifierKind.Encoder)]
    [DataRow("distilbert", ClassifierKind.Encoder)]
    [DataRow("roberta", ClassifierKind.Encoder)]
    [DataRow("gpt2", ClassifierKind.Decoder)]
    public void ATinyModelLearnsASeparableBinaryDataset(string family, ClassifierKind kind)
    {
        var accuracy = TrainAccuracy(family, kind, SyntheticReviews.Binary(160, seed: 1), ["negative", "positive"], Fast);
        Assert.IsTrue(accuracy >= 0.95, $"{family}: training accuracy {accuracy:P1}");
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void ATinyModelLearnsThreeClasses()
    {
        var accuracy = TrainAccuracy("bert", ClassifierKind.Encoder, SyntheticReviews.ThreeClasses(180, seed: 2), ["negative", "neutral", "positive"], Fast with { Epochs = 20 });
        Assert.IsTrue(accuracy >= 0.95, $"training accuracy {accuracy:P1}");
    }

    [TestMethod]
    public void TheSameSeedGivesTheSameModel()
    {
        var data = SyntheticReviews.Binary(48, seed: 4);
        float[][] Run()
        {
            using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "bert"), ["n", "p"], ClassifierKind.Encoder, 32, 11, out _);
            FineTuner.Train(classifier, new LabeledTexts(data.Texts, null, data.Labels), null, Fast with { Epochs = 2, Seed = 11 });
            return classifier.PredictProbabilities(data.Texts, null);
        }

        var first = Run();
        var second = Run();
        for (var i = 0; i < first.Length; i++)
        {
            CollectionAssert.AreEqual(first[i], second[i], $"row {i}");
        }
    }

    [TestMethod]
    public void CancellationStopsWithinOneBatch()
    {
        var data = SyntheticReviews.Binary(200, seed: 5);
        using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "bert"), ["n", "p"], ClassifierKind.Encoder, 32, 1, out _);
        using var cancellation = new CancellationTokenSource();
        var steps = 0;
        var progress = new SynchronousProgress(p =>
        {
            steps = p.Step;
            if (p.Step == 2)
            {
                cancellation.Cancel();
            }
        });
        Assert.ThrowsExactly<OperationCanceledException>(() =>
            FineTuner.Train(classifier, new LabeledTexts(data.Texts, null, data.Labels), null, Fast with { BatchSize = 8 }, progress, cancellation.Token));
        Assert.AreEqual(2, steps, "no step may run after the cancellation");
    }

    [TestMethod]
    public void ValidationEarlyStoppingRestoresTheBestEpochAndReportsProgress()
    {
        var train = SyntheticReviews.Binary(64, seed: 6);
        var validation = SyntheticReviews.Binary(32, seed: 7);
        using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "bert"), ["n", "p"], ClassifierKind.Encoder, 32, 1, out _);
        var epochs = new List<TrainingProgress>();
        var best = FineTuner.Train(classifier, new LabeledTexts(train.Texts, null, train.Labels), new LabeledTexts(validation.Texts, null, validation.Labels),
            Fast with { Epochs = 6, EarlyStoppingPatience = 1 }, new SynchronousProgress(p =>
            {
                if (p.IsEpochEnd)
                {
                    epochs.Add(p);
                }
            }));
        Assert.IsTrue(epochs.Count >= 1 && epochs.All(e => e.ValidationAccuracy is not null && e.ValidationLogLoss is not null));
        var bestAccuracy = epochs.Max(e => e.ValidationAccuracy!.Value);
        Assert.AreEqual(bestAccuracy, epochs[best - 1].ValidationAccuracy!.Value, "the returned epoch is the best one");
        var (accuracy, _) = FineTuner.Evaluate(classifier, new LabeledTexts(validation.Texts, null, validation.Labels), 64);
        Assert.AreEqual(bestAccuracy, accuracy, 1e-9, "the best epoch's weights are restored");
        Assert.IsTrue(epochs.All(e => e.SequencesPerSecond > 0 && e.LearningRate >= 0));
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void SentencePairsTrain()
    {
        // Label 1 when both sentences use the same polarity word list.
        var (a, la) = SyntheticReviews.Binary(120, seed: 8);
        var (b, lb) = SyntheticReviews.Binary(120, seed: 9);
        var shuffled = Enumerable.Range(0, 120).Select(i => (i * 7) % 120).ToArray();
        var second = shuffled.Select(i => b[i]).ToList();
        var labels = Enumerable.Range(0, 120).Select(i => la[i] == lb[shuffled[i]] ? 1 : 0).ToList();
        using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "bert"), ["different", "same"], ClassifierKind.Encoder, 48, 1, out _);
        var rows = new LabeledTexts(a, second, labels);
        FineTuner.Train(classifier, rows, null, Fast with { Epochs = 25, MaxLength = 48 });
        var accuracy = FineTuner.Evaluate(classifier, rows, 64).Accuracy;
        Assert.IsTrue(accuracy >= 0.9, $"pair training accuracy {accuracy:P1}");
    }

    [TestMethod]
    public void InferenceLeavesNoTensorsBehind()
    {
        var data = SyntheticReviews.Binary(100, seed: 10);
        using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "gpt2"), ["n", "p"], ClassifierKind.Decoder, 32, 1, out _);
        classifier.PredictProbabilities(data.Texts, null, 16);
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 3; i++)
        {
            classifier.PredictProbabilities(data.Texts, null, 16);
        }

        Assert.AreEqual(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount, "live tensors grew during inference");
    }

    [TestMethod]
    public void SaveAndLoadGiveIdenticalProbabilities()
    {
        var data = SyntheticReviews.Binary(40, seed: 12);
        var folder = TestPaths.NewTempDirectory();
        try
        {
            using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "roberta"), ["neg", "pos"], ClassifierKind.Encoder, 32, 1, out _);
            FineTuner.Train(classifier, new LabeledTexts(data.Texts, null, data.Labels), null, Fast with { Epochs = 1 });
            classifier.Save(folder);
            using var loaded = HeadClassifier.Load(folder);
            CollectionAssert.AreEqual(new[] { "neg", "pos" }, loaded.Labels.ToArray());
            var expected = classifier.PredictProbabilities(data.Texts, null);
            var actual = loaded.PredictProbabilities(data.Texts, null);
            for (var i = 0; i < expected.Length; i++)
            {
                CollectionAssert.AreEqual(expected[i], actual[i], $"row {i}");
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void ABaseCheckpointGetsANewHeadAndReportsIt()
    {
        using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "bert"), ["a", "b", "c", "d", "e"], ClassifierKind.Encoder, 32, 1, out var report);
        Assert.IsNotNull(report);
        CollectionAssert.AreEquivalent(new[] { "classifier.weight", "classifier.bias" }, report.Mismatched.ToArray(), report.ToString());
        StringAssert.Contains(report.ToString(), "classifier.weight");
    }

    [TestMethod]
    public void AKindThatDoesNotMatchTheFamilyIsAClearError()
    {
        var error = Assert.ThrowsExactly<InvalidDataException>(() =>
            HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "gpt2"), ["a", "b"], ClassifierKind.Encoder, 32, 1, out _));
        StringAssert.Contains(error.Message, "DecoderClassifier");
    }

    private sealed class SynchronousProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
