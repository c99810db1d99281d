using MLNetTransformerExtensions.Training;
using TorchSharp;

namespace MLNetTransformerExtensions.Tests.Training;

[TestClass]
public sealed class TokenAttributorTests
{
    private const string KeyWord = "excellent";
    private static readonly string[] Fillers = ["long", "french", "old", "new", "quiet", "short", "red", "late"];
    private static readonly string[] Templates = ["the movie was {0} and the music too", "a {0} story", "honestly the {0} plot felt slow", "{0} acting in an old town"];

    private static readonly TokenAttributionOptions IntegratedGradients = new() { Steps = 32 };

    /// <summary>Rows whose class is only whether the key word stands in for a filler word (label 1) or not.</summary>
    private static (List<string> Texts, List<int> Labels) KeyWordRows(int count, int seed)
    {
        var random = new Random(seed);
        var texts = new List<string>();
        var labels = new List<int>();
        for (var i = 0; i < count; i++)
        {
            var label = i % 2;
            var word = label == 1 ? KeyWord : Fillers[random.Next(Fillers.Length)];
            texts.Add(string.Format(System.Globalization.CultureInfo.InvariantCulture, Templates[random.Next(Templates.Length)], word));
            labels.Add(label);
        }

        return (texts, labels);
    }

    private static HeadClassifier TrainedOnKeyWord(string family, ClassifierKind kind)
    {
        var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", family), ["other", "key"], kind, 24, 5, out _);
        var (texts, labels) = KeyWordRows(48, seed: 1);
        FineTuner.Train(classifier, new LabeledTexts(texts, null, labels), null,
            new FineTuningOptions { Epochs = 6, BatchSize = 16, LearningRate = 2e-3, MaxLength = 24, Seed = 5 });
        return classifier;
    }

    [TestMethod]
    [DataRow("bert", ClassifierKind.Encoder)]
    [DataRow("gpt2", ClassifierKind.Decoder)]
    public void TheKeyWordGetsTheLargestAttribution(string family, ClassifierKind kind)
    {
        using var classifier = TrainedOnKeyWord(family, kind);
        foreach (var method in new[] { AttributionMethod.IntegratedGradients, AttributionMethod.GradientTimesInput })
        {
            foreach (var text in new[] { "a excellent story", "honestly the excellent plot felt slow" })
            {
                var why = TokenAttributor.Explain(classifier, text, null, new TokenAttributionOptions { Method = method, Steps = 16, Label = "key" });
                Assert.AreEqual("key", why.PredictedLabel, $"{family}: the model did not learn the key word on \"{text}\"");
                // The tiny fixtures' vocabularies split most words into pieces: compare whole words.
                var words = WordAttributions(classifier, text, why);
                var top = words.MaxBy(w => w.Attribution);
                Assert.AreEqual(KeyWord, top.Word, $"{family} {method}: \"{text}\": {string.Join(", ", words.Select(w => $"{w.Word} {w.Attribution:F3}"))}");
            }
        }
    }

    /// <summary>Each word's summed token attributions (the tokenizers split on spaces first, so a word's tokens are its own).</summary>
    private static List<(string Word, double Attribution)> WordAttributions(HeadClassifier classifier, string text, TokenAttribution why)
    {
        var tokenizer = classifier.Tokenizer;
        var position = tokenizer.ClsTokenId is int cls && tokenizer.ConvertIdsToTokens([cls])[0] == why.Tokens[0] ? 1 : 0;
        var result = new List<(string, double)>();
        var words = text.Split(' ');
        for (var i = 0; i < words.Length; i++)
        {
            var count = tokenizer.EncodeWithoutSpecialTokens(i == 0 ? words[i] : " " + words[i]).Count;
            result.Add((words[i], why.Attributions.Skip(position).Take(count).Sum()));
            position += count;
        }

        return result;
    }

    [TestMethod]
    [DataRow("bert", ClassifierKind.Encoder)]
    [DataRow("roberta", ClassifierKind.Encoder)]
    [DataRow("distilbert", ClassifierKind.Encoder)]
    [DataRow("gpt2", ClassifierKind.Decoder)]
    public void IntegratedGradientsAddUpToTheScoreDifference(string family, ClassifierKind kind)
    {
        using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", family), ["a", "b", "c"], kind, 32, 3, out _);
        classifier.Model.eval();
        var why = TokenAttributor.Explain(classifier, "the quiet film was long but lovely", null, new TokenAttributionOptions { Steps = 64, Label = "c" });
        var difference = why.Score - why.BaselineScore;
        Assert.IsNotNull(why.CompletenessError);
        Assert.AreEqual(difference, why.Attributions.Sum(), 0.02 * Math.Abs(difference) + 1e-4, $"{family}: attributions {why.Attributions.Sum():G4} vs score difference {difference:G4}");
        Assert.AreEqual(why.Attributions.Sum() - difference, why.CompletenessError!.Value, 1e-9);

        // The explained score is the class's logit, as the classifier computes it.
        using (torch.no_grad())
        {
            var logits = ((IExplainableClassifier)classifier).ClassScores("the quiet film was long but lovely", null, 1);
            Assert.AreEqual(logits[0, 2].item<float>(), why.Score, 1e-5);
        }
    }

    [TestMethod]
    public void AttributionsAreDeterministicAndBatchIndependent()
    {
        using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "bert"), ["a", "b"], ClassifierKind.Encoder, 32, 3, out _);
        var texts = new[] { "a short sentence", "a much longer sentence that pads the other one in a batch" };
        foreach (var method in new[] { AttributionMethod.IntegratedGradients, AttributionMethod.GradientTimesInput })
        {
            var options = new TokenAttributionOptions { Method = method, Steps = 20 };
            var alone = TokenAttributor.Explain(classifier, texts[0], null, options);
            var again = TokenAttributor.Explain(classifier, texts[0], null, options);
            TokenAttributor.Explain(classifier, texts[1], null, options);
            var afterAnother = TokenAttributor.Explain(classifier, texts[0], null, options);
            CollectionAssert.AreEqual(alone.Attributions.ToArray(), again.Attributions.ToArray(), $"{method}: not deterministic");
            CollectionAssert.AreEqual(alone.Attributions.ToArray(), afterAnother.Attributions.ToArray(), $"{method}: depends on the row explained before");
        }
    }

    [TestMethod]
    [DataRow("bert", ClassifierKind.Encoder)]
    [DataRow("gpt2", ClassifierKind.Decoder)]
    public void PromptClassifiersAreExplainedThroughTheirLabelWords(string family, ClassifierKind kind)
    {
        using var classifier = PromptClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny-lm", family), ["terrible", "great"], kind, null, maxLength: 32, seed: 1, out _);
        const string text = "the film was long but lovely";
        var why = TokenAttributor.Explain(classifier, text, null, new TokenAttributionOptions { Steps = 64, Label = "great" });
        var scores = classifier.ScoreLabelWords([text], null)[0];
        Assert.AreEqual(scores[1], why.Score, 1e-4, "the explained score is the label word's log-probability");
        var difference = why.Score - why.BaselineScore;
        Assert.AreEqual(difference, why.Attributions.Sum(), 0.02 * Math.Abs(difference) + 1e-4, $"{family}: attributions {why.Attributions.Sum():G4} vs score difference {difference:G4}");
        Assert.AreEqual(why.Tokens.Count, why.Attributions.Count);
        Assert.IsTrue(why.Tokens.Count > classifier.Tokenizer.EncodeWithoutSpecialTokens(text).Count, "the prompt's template tokens are explained too");
    }

    [TestMethod]
    public void AnUnknownClassIsNamedWithTheClassesThereAre()
    {
        using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "bert"), ["neg", "pos"], ClassifierKind.Encoder, 32, 3, out _);
        var e = Assert.ThrowsExactly<ArgumentException>(() => TokenAttributor.Explain(classifier, "text", null, new TokenAttributionOptions { Label = "neutral" }));
        StringAssert.Contains(e.Message, "'neutral' is not a class of this classifier; its classes are 'neg', 'pos'");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => TokenAttributor.Explain(classifier, "text", null, new TokenAttributionOptions { Steps = 0 }));
    }

    [TestMethod]
    [DataRow("hf-tiny", "gpt2", ClassifierKind.Decoder, false)]
    [DataRow("hf-tiny", "bert", ClassifierKind.Encoder, false)]
    [DataRow("hf-tiny-lm", "gpt2", ClassifierKind.Decoder, true)] // the label words' differentiable scores
    public void ExplainingLeavesNoTensorsOrGradientsBehind(string fixtures, string family, ClassifierKind kind, bool prompt)
    {
        var folder = TestPaths.Fixtures(fixtures, family);
        using var owned = prompt
            ? (IDisposable)PromptClassifier.FromPretrained(folder, ["negative", "positive"], kind, null, maxLength: 32, seed: 3, out _)
            : HeadClassifier.FromPretrained(folder, ["a", "b"], kind, 32, 3, out _);
        var classifier = (IExplainableClassifier)owned;
        TokenAttributor.Explain(classifier, "one text", null, IntegratedGradients);
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 3; i++)
        {
            TokenAttributor.Explain(classifier, "one text to explain", null, IntegratedGradients);
        }

        Assert.AreEqual(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount, "live tensors grew while explaining");
        Assert.IsTrue(classifier.Network.parameters().All(p => p.grad is null), "explaining accumulated parameter gradients");
    }
}
