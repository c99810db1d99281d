using System.Text.Json;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.Training;

/// <summary>
/// The text-to-text prompt strategy of encoder-decoders: its scores are HuggingFace's teacher-forced target
/// log-probabilities (hf-tiny-seq2seq), and fine-tuning on the true target's cross-entropy learns.
/// </summary>
[TestClass]
public sealed class TargetScorerTests
{
    [TestMethod]
    [DataRow("bart-lm", " positive", " negative")]
    [DataRow("t5", "positive", "negative")]
    [DataRow("t5-v1_1", "yes", "no")]
    public void ScoresAreTheFixturesTargetLogProbabilities(string name, string first, string second)
    {
        var folder = TestPaths.Fixtures("hf-tiny-seq2seq", name);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "expected.json")));
        foreach (var normalized in new[] { false, true })
        {
            using var classifier = PromptClassifier.FromPretrained(folder, ["a", "b"], ClassifierKind.EncoderDecoder,
                new PromptOptions { Template = "{text}", LabelWords = [first, second], LengthNormalized = normalized }, maxLength: 32, seed: 1, out var report);
            Assert.IsTrue(report!.IsComplete, report.ToString());
            var cases = json.RootElement.GetProperty("cases").EnumerateArray().Where(c => c.GetProperty("text_pair").ValueKind == JsonValueKind.Null && !c.GetProperty("truncated").GetBoolean()).ToList();
            var scores = classifier.ScoreLabelWords([.. cases.Select(c => c.GetProperty("text").GetString()!)], null, batchSize: 4);
            for (var i = 0; i < cases.Count; i++)
            {
                CollectionAssert.AreEqual(cases[i].GetProperty("input_ids").EnumerateArray().Select(v => v.GetInt32()).ToArray(),
                    classifier.EncodePrompt(cases[i].GetProperty("text").GetString()!, null).Ids, "the prompt is the text as the tokenizer encodes it");
                var targets = cases[i].GetProperty("targets").EnumerateArray().ToDictionary(t => t.GetProperty("target").GetString()!);
                var property = normalized ? "mean" : "sum";
                Assert.AreEqual(targets[first].GetProperty(property).GetDouble(), scores[i][0], 1e-3, $"{name} case {i} {first} {property}");
                Assert.AreEqual(targets[second].GetProperty(property).GetDouble(), scores[i][1], 1e-3, $"{name} case {i} {second} {property}");
            }
        }
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void FineTuningOnTheTrueTargetLearns()
    {
        var (texts, labels) = SyntheticReviews.Binary(32, seed: 71);
        var folder = TestPaths.Fixtures("hf-tiny-seq2seq", "t5");
        using var classifier = PromptClassifier.FromPretrained(folder, ["negative", "positive"], ClassifierKind.EncoderDecoder,
            new PromptOptions { Template = "sst2 sentence: {text}", LabelWords = ["negative", "positive"] }, maxLength: 48, seed: 1, out _);
        double Accuracy() => classifier.PredictProbabilities(texts, null).Select((p, i) => (p[1] > p[0] ? 1 : 0) == labels[i] ? 1.0 : 0.0).Average();
        var data = new LabeledTexts(texts, null, labels);
        var before = Accuracy();
        FineTuner.Train(classifier, data, null, new FineTuningOptions { Epochs = 8, BatchSize = 8, LearningRate = 3e-3, Seed = 1 });
        var after = Accuracy();
        Assert.IsTrue(after >= 0.75 && after > before, $"training accuracy {before:P0} before fine-tuning, {after:P0} after");
    }

    [TestMethod]
    public void DemonstrationsAreRefusedForEncoderDecoders()
    {
        var folder = TestPaths.Fixtures("hf-tiny-seq2seq", "t5");
        Assert.Throws<ArgumentException>(() => PromptClassifier.FromPretrained(folder, ["negative", "positive"], ClassifierKind.EncoderDecoder,
            new PromptOptions { Shots = 2 }, maxLength: 32, seed: 1, out _));
    }
}
