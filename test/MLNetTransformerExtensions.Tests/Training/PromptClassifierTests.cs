using System.Diagnostics;
using MLNetTransformerExtensions.Training;
using TorchSharp;

namespace MLNetTransformerExtensions.Tests.Training;

/// <summary>
/// The prompt strategy end to end: zero-shot, few-shot demonstrations, calibration, truncation, fine-tuning through
/// the shared loop, save/load, and native memory.
/// </summary>
[TestClass]
public sealed class PromptClassifierTests
{
    private static readonly string[] Sentiments = ["negative", "positive"];

    private static string Lm(string family) => TestPaths.Fixtures("hf-tiny-lm", family);

    private static PromptClassifier Gpt2(PromptOptions? options = null, int maxLength = 64) =>
        PromptClassifier.FromPretrained(Lm("gpt2"), Sentiments, ClassifierKind.Decoder, options, maxLength, seed: 1, out _);

    /// <summary>Short reviews whose sentiment is carried by one word (great, good, loved / bad, terrible, hated).</summary>
    private static LabeledTexts Reviews(int count, int seed)
    {
        string[] subjects = ["The movie", "The plot", "The music", "This film", "The acting", "The ending"];
        string[][] adjectives = [["bad", "terrible"], ["great", "good"]];
        string[] verbs = ["hated", "loved"];
        var random = new Random(seed);
        var texts = new List<string>();
        var labels = new List<int>();
        for (var i = 0; i < count; i++)
        {
            var label = i % 2;
            var subject = subjects[random.Next(subjects.Length)];
            texts.Add(random.Next(3) == 0
                ? $"I {verbs[label]} {subject.ToLowerInvariant()}."
                : $"{subject} was {adjectives[label][random.Next(2)]}.");
            labels.Add(label);
        }

        return new LabeledTexts(texts, null, labels);
    }

    private static double Accuracy(float[][] probabilities, LabeledTexts data) =>
        probabilities.Select((p, i) => Array.IndexOf(p, p.Max()) == data.Labels[i] ? 1.0 : 0.0).Average();

    /// <summary>A GPT-2 folder with config and tokenizer but no weights: the model starts from random weights.</summary>
    private static string RandomGpt2Folder()
    {
        var folder = TestPaths.NewTempDirectory();
        foreach (var file in Directory.GetFiles(Lm("gpt2")).Where(f => !f.EndsWith(".safetensors", StringComparison.Ordinal) && !f.EndsWith("expected.json", StringComparison.Ordinal)))
        {
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        }

        return folder;
    }

    [TestMethod]
    public void ZeroShotNeedsOnlyTheLabelsAndIsDeterministic()
    {
        string[] texts = ["I loved the cinematography.", "The plot was dull.", ""];
        using var first = Gpt2();
        using var second = Gpt2();
        var probabilities = first.PredictProbabilities(texts, null);
        CollectionAssert.AreEqual(probabilities.SelectMany(p => p).ToArray(), second.PredictProbabilities(texts, null).SelectMany(p => p).ToArray());
        Assert.IsTrue(probabilities.All(p => p.Length == 2 && Math.Abs(p.Sum() - 1) < 1e-5 && p.All(v => v > 0)));

        // Zero epochs and no rows: nothing changes.
        Assert.AreEqual(0, FineTuner.Train(first, new LabeledTexts([], null, []), null, new FineTuningOptions { Epochs = 0 }));
        CollectionAssert.AreEqual(probabilities.SelectMany(p => p).ToArray(), first.PredictProbabilities(texts, null).SelectMany(p => p).ToArray());
        Assert.AreEqual(0, first.Demonstrations.Count);
    }

    [TestMethod]
    public void DemonstrationsAreSeededAndBalancedAcrossClasses()
    {
        var texts = Enumerable.Range(0, 30).Select(i => $"row {i}").ToList();
        var labels = Enumerable.Range(0, 30).Select(i => i < 20 ? 0 : i < 27 ? 1 : 2).ToList();
        var data = new LabeledTexts(texts, null, labels);
        var picked = PromptClassifier.SelectDemonstrations(data, 3, shots: 7, seed: 5);
        CollectionAssert.AreEqual(new[] { 3, 2, 2 }, Enumerable.Range(0, 3).Select(c => picked.Count(d => d.Label == c)).ToArray());
        CollectionAssert.AreEqual(picked.ToArray(), PromptClassifier.SelectDemonstrations(data, 3, shots: 7, seed: 5).ToArray(), "same seed, same demonstrations");
        CollectionAssert.AreNotEqual(picked.ToArray(), PromptClassifier.SelectDemonstrations(data, 3, shots: 7, seed: 6).ToArray());
        Assert.IsTrue(picked.All(d => labels[texts.IndexOf(d.Text)] == d.Label), "each demonstration keeps its row's label");

        // Few classes: the rarest runs out and the others fill in; more shots than rows takes every row.
        CollectionAssert.AreEqual(new[] { 6, 5, 3 }, Enumerable.Range(0, 3).Select(c => PromptClassifier.SelectDemonstrations(data, 3, 14, 1).Count(d => d.Label == c)).ToArray());
        Assert.AreEqual(30, PromptClassifier.SelectDemonstrations(data, 3, 100, 1).Count);
    }

    [TestMethod]
    public void TrainingWithShotsPutsTheDemonstrationsBeforeThePrompt()
    {
        using var classifier = Gpt2(new PromptOptions { Shots = 2 });
        var train = Reviews(20, seed: 3);
        FineTuner.Train(classifier, train, null, new FineTuningOptions { Epochs = 0, Seed = 9 });
        Assert.AreEqual(2, classifier.Demonstrations.Count);
        CollectionAssert.AreEquivalent(new[] { 0, 1 }, classifier.Demonstrations.Select(d => d.Label).ToArray());

        // The prompt is "Review: <demo> Sentiment: <word>\nReview: <demo> Sentiment: <word>\nReview: <text> Sentiment:".
        using var plain = Gpt2();
        var expected = new List<int>();
        foreach (var d in classifier.Demonstrations)
        {
            expected.AddRange(plain.EncodePrompt(d.Text, null).Ids);
            expected.AddRange(classifier.LabelWordTokenIds[d.Label]);
            expected.AddRange(classifier.Tokenizer.EncodeWithoutSpecialTokens("\n"));
        }

        expected.AddRange(plain.EncodePrompt("It was fun.", null).Ids);
        CollectionAssert.AreEqual(expected, classifier.EncodePrompt("It was fun.", null).Ids);
    }

    [TestMethod]
    public void DemonstrationsGiveWayBeforeTheInputIsTruncated()
    {
        using var classifier = Gpt2(maxLength: 40);
        var demonstrations = new[]
        {
            new Demonstration("The acting was great and the music was wonderful from start to finish.", null, 1),
            new Demonstration("The plot was dull.", null, 0),
            new Demonstration("The script was bad, the ending was terrible and the cast was awful.", null, 0),
        };
        classifier.SetDemonstrations(demonstrations);
        using var plain = Gpt2(maxLength: 40);
        var sentiment = classifier.Tokenizer.EncodeWithoutSpecialTokens(" Sentiment:").ToArray();

        // A short input keeps its whole prompt; the demonstrations are shortened (the longest first) to fit.
        var shortRow = classifier.EncodePrompt("Fun.", null);
        Assert.AreEqual(40, shortRow.Ids.Length);
        Assert.IsTrue(shortRow.Truncated);
        var query = plain.EncodePrompt("Fun.", null).Ids;
        CollectionAssert.AreEqual(query, shortRow.Ids[^query.Length..]);
        Assert.AreEqual(3, CountOccurrences(shortRow.Ids, classifier.Tokenizer.EncodeWithoutSpecialTokens("\n").Single()), "all three demonstrations stay, shortened");

        // A long input pushes the demonstrations out first, then is truncated itself; the template's end survives.
        var longText = string.Join(" ", Enumerable.Repeat("The movie was great.", 20));
        var longRow = classifier.EncodePrompt(longText, null);
        Assert.AreEqual(40, longRow.Ids.Length);
        CollectionAssert.AreEqual(plain.EncodePrompt(longText, null).Ids, longRow.Ids, "no demonstration is left when the input fills the prompt");
        CollectionAssert.AreEqual(sentiment, longRow.Ids[^sentiment.Length..]);
    }

    [TestMethod]
    public void AnEncoderMaskSurvivesTruncation()
    {
        using var classifier = PromptClassifier.FromPretrained(Lm("bert"), Sentiments, ClassifierKind.Encoder, null, maxLength: 16, seed: 1, out _);
        var row = classifier.EncodePrompt(string.Join(" ", Enumerable.Repeat("the movie was great", 10)), null);
        Assert.AreEqual(16, row.Ids.Length);
        Assert.IsTrue(row.Truncated);
        Assert.AreEqual(classifier.Tokenizer.MaskTokenId, row.Ids[row.Position]);
        Assert.AreEqual(classifier.Tokenizer.SepTokenId, row.Ids[^1]);
        var end = classifier.Tokenizer.EncodeWithoutSpecialTokens("It was [MASK].").ToArray();
        CollectionAssert.AreEqual(end, row.Ids[^(end.Length + 1)..^1], "the template's end is kept whole");
    }

    [TestMethod]
    public void CalibrationDividesByTheContentFreeInput()
    {
        using var raw = Gpt2();
        using var calibrated = Gpt2(new PromptOptions { Calibrate = true, ContentFreeText = "N/A" });
        var contentFree = raw.PredictProbabilities(["N/A"], null)[0];
        CollectionAssert.AreEqual(contentFree.Select(p => Math.Round(p, 6)).ToArray(), calibrated.Calibration!.Select(p => Math.Round(p, 6)).ToArray());

        string[] texts = ["I loved it.", "The plot was dull and the acting was even worse."];
        var before = raw.PredictProbabilities(texts, null);
        var after = calibrated.PredictProbabilities(texts, null);
        for (var i = 0; i < texts.Length; i++)
        {
            var divided = before[i].Select((p, k) => p / contentFree[k]).ToArray();
            for (var k = 0; k < 2; k++)
            {
                Assert.AreEqual(divided[k] / divided.Sum(), after[i][k], 1e-5);
            }
        }

        // The content-free input itself becomes uninformative.
        Assert.AreEqual(0.5, calibrated.PredictProbabilities(["N/A"], null)[0][0], 1e-5);
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void ADecoderLearnsFromRandomWeightsWithThePromptLoss()
    {
        var folder = RandomGpt2Folder();
        try
        {
            using var classifier = PromptClassifier.FromPretrained(folder, Sentiments, ClassifierKind.Decoder, null, maxLength: 48, seed: 1, out var report);
            Assert.IsNull(report, "no weights: random initialisation");
            var train = Reviews(160, seed: 1);
            var validation = Reviews(40, seed: 2);
            Assert.IsTrue(Accuracy(classifier.PredictProbabilities(train.Texts, null), train) < 0.8, "random weights do not already solve it");
            var progress = new List<TrainingProgress>();
            var clock = Stopwatch.StartNew();
            var epoch = FineTuner.Train(classifier, train, validation,
                new FineTuningOptions { Epochs = 8, BatchSize = 8, LearningRate = 1e-3, WarmupRatio = 0.1, Seed = 1 }, new SynchronousProgress(progress.Add));
            var accuracy = Accuracy(classifier.PredictProbabilities(train.Texts, null), train);
            Console.WriteLine($"decoder prompt training: {clock.Elapsed.TotalSeconds:0.0} s, training accuracy {accuracy:0.000}, epoch {epoch}, last loss {progress[^1].Loss:0.0000}");
            Assert.IsTrue(accuracy >= 0.95, $"training accuracy {accuracy}");
            Assert.AreEqual(8, progress.Count(p => p.IsEpochEnd));
            Assert.IsTrue(progress.Where(p => p.IsEpochEnd).All(p => p.ValidationAccuracy is not null));
            Assert.IsTrue(progress.First(p => p.IsEpochEnd).Loss > progress.Last(p => p.IsEpochEnd).Loss, "the loss falls");
            Assert.AreEqual(1.0, FineTuner.Evaluate(classifier, validation, 16).Accuracy, 0.05);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void AnEncoderLearnsWithCrossEntropyOverTheLabelWords()
    {
        using var classifier = PromptClassifier.FromPretrained(Lm("distilbert"), Sentiments, ClassifierKind.Encoder,
            new PromptOptions { LabelWords = ["bad", "good"] }, maxLength: 32, seed: 1, out _);
        var train = Reviews(120, seed: 4);
        var clock = Stopwatch.StartNew();
        FineTuner.Train(classifier, train, null, new FineTuningOptions { Epochs = 6, BatchSize = 8, LearningRate = 1e-3, Seed = 1 });
        var accuracy = Accuracy(classifier.PredictProbabilities(train.Texts, null), train);
        Console.WriteLine($"encoder prompt training: {clock.Elapsed.TotalSeconds:0.0} s, training accuracy {accuracy:0.000}");
        Assert.IsTrue(accuracy >= 0.95, $"training accuracy {accuracy}");
    }

    [TestMethod]
    public void EarlyStoppingRestoresTheBestEpochAndRecalibrates()
    {
        using var classifier = Gpt2(new PromptOptions { Calibrate = true });
        var before = classifier.Calibration!.ToArray();
        var train = Reviews(32, seed: 5);
        var epoch = FineTuner.Train(classifier, train, train,
            new FineTuningOptions { Epochs = 3, BatchSize = 16, LearningRate = 1e-3, EarlyStoppingPatience = 1, Seed = 1 });
        Assert.IsTrue(epoch is >= 1 and <= 3);
        CollectionAssert.AreNotEqual(before, classifier.Calibration!.ToArray(), "the calibration follows the trained weights");
        var contentFree = classifier.PredictProbabilities([classifier.Options.ContentFreeText], null)[0];
        Assert.AreEqual(0.5, contentFree[0], 1e-5);
    }

    [TestMethod]
    [DataRow("gpt2", ClassifierKind.Decoder)]
    [DataRow("roberta", ClassifierKind.Encoder)]
    public void SaveAndLoadGiveIdenticalProbabilities(string family, ClassifierKind kind)
    {
        var folder = TestPaths.NewTempDirectory();
        try
        {
            var options = new PromptOptions { Shots = 2, Calibrate = true, LengthNormalized = true, ContentFreeText = "nothing", DemonstrationSeparator = " | " };
            if (kind == ClassifierKind.Decoder)
            {
                options = options with { Template = "Text: {text}\nAnswer:", LabelWords = ["dreadful", "excellent"] }; // several tokens each
            }

            using var classifier = PromptClassifier.FromPretrained(Lm(family), Sentiments, kind, options, maxLength: 48, seed: 1, out _);
            FineTuner.Train(classifier, Reviews(24, seed: 6), null, new FineTuningOptions { Epochs = 1, BatchSize = 8, LearningRate = 1e-3, Seed = 3 });
            string[] texts = ["I loved the cinematography.", "Dull.", ""];
            var expected = classifier.PredictProbabilities(texts, null);
            classifier.Save(folder);

            using var loaded = PromptClassifier.Load(folder);
            CollectionAssert.AreEqual(expected.SelectMany(p => p).ToArray(), loaded.PredictProbabilities(texts, null).SelectMany(p => p).ToArray());
            CollectionAssert.AreEqual(classifier.Demonstrations.ToArray(), loaded.Demonstrations.ToArray());
            CollectionAssert.AreEqual(classifier.Calibration!.ToArray(), loaded.Calibration!.ToArray());
            CollectionAssert.AreEqual(classifier.LabelWords.ToArray(), loaded.LabelWords.ToArray());
            Assert.AreEqual(classifier.Options, loaded.Options with { LabelWords = classifier.Options.LabelWords });
            CollectionAssert.AreEqual(Sentiments, loaded.Labels.ToArray());
            Assert.AreEqual(kind, loaded.Kind);
            Assert.AreEqual(48, loaded.MaxLength);
            StringAssert.Contains(File.ReadAllText(Path.Combine(folder, "config.json")), kind == ClassifierKind.Decoder ? "GPT2LMHeadModel" : "RobertaForMaskedLM");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void ScoringLeavesNoTensorBehind()
    {
        using var decoder = Gpt2(new PromptOptions { LabelWords = ["dreadful", "excellent"], Calibrate = true });
        using var encoder = PromptClassifier.FromPretrained(Lm("bert"), Sentiments, ClassifierKind.Encoder, null, 32, 1, out _);
        string[] texts = ["I loved it.", "The plot was dull.", "Fine."];
        decoder.PredictProbabilities(texts, null, batchSize: 2);
        encoder.PredictProbabilities(texts, null, batchSize: 2);
        var live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        decoder.PredictProbabilities(texts, null, batchSize: 2);
        encoder.PredictProbabilities(texts, null, batchSize: 2);
        decoder.Recalibrate();
        Assert.AreEqual(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    private static int CountOccurrences(int[] ids, int id) => ids.Count(i => i == id);

    /// <summary>Reports on the caller's thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SynchronousProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
