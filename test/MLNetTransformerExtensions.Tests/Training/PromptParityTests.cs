using System.Text.Json;
using MLNetTransformerExtensions.Tokenization;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.Training;

/// <summary>
/// Label-word scores of <see cref="PromptClassifier"/> against HuggingFace's for the hf-tiny-lm fixtures: the prompt
/// tokens, each label word's log-softmax over the vocabulary, the class probabilities over the label words and, for
/// GPT-2, multi-token words scored by teacher forcing.
/// </summary>
[TestClass]
public sealed class PromptParityTests
{
    private const double LogSoftmaxTolerance = 2e-4;
    private const double ProbabilityTolerance = 1e-4;

    public static IEnumerable<object[]> Encoders => [["bert"], ["distilbert"], ["roberta"]];

    internal static JsonElement Expected(string family)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("hf-tiny-lm", family, "expected.json")));
        return json.RootElement.Clone();
    }

    internal static string[] Words(JsonElement expected, string property = "label_words") =>
        [.. expected.GetProperty(property).EnumerateArray().Select(w => w.ValueKind == JsonValueKind.String ? w.GetString()! : w.GetProperty("word").GetString()!)];

    internal static PromptClassifier Gpt2(string template, IReadOnlyList<string> words, bool lengthNormalized = false) =>
        PromptClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny-lm", "gpt2"), [.. words.Select(w => w.Trim())], ClassifierKind.Decoder,
            new PromptOptions { Template = template, LabelWords = words, LengthNormalized = lengthNormalized }, maxLength: 32, seed: 1, out _);

    private static int[] Ints(JsonElement array) => [.. array.EnumerateArray().Select(v => v.GetInt32())];

    private static void AssertClose(double expected, double actual, double tolerance, string what) =>
        Assert.IsTrue(Math.Abs(expected - actual) <= tolerance, $"{what}: expected {expected}, got {actual} (|Δ| {Math.Abs(expected - actual):E2} > {tolerance:E0})");

    private static void AssertLabelWords(JsonElement c, double[] scores, float[] probabilities, string what)
    {
        var words = c.GetProperty("label_words").EnumerateArray().ToArray();
        for (var k = 0; k < words.Length; k++)
        {
            AssertClose(words[k].GetProperty("log_softmax").GetDouble(), scores[k], LogSoftmaxTolerance, $"{what} '{words[k].GetProperty("word").GetString()}' log-softmax");
            AssertClose(words[k].GetProperty("label_word_prob").GetDouble(), probabilities[k], ProbabilityTolerance, $"{what} '{words[k].GetProperty("word").GetString()}' probability");
        }
    }

    [TestMethod]
    public void Gpt2LabelWordsMatchHuggingFace()
    {
        var expected = Expected("gpt2");
        using var classifier = Gpt2("{text}", Words(expected));
        CollectionAssert.AreEqual(expected.GetProperty("label_words").EnumerateArray().Select(w => w.GetProperty("token_id").GetInt32()).ToArray(),
            classifier.LabelWordTokenIds.Select(t => t.Single()).ToArray());
        foreach (var c in expected.GetProperty("cases").EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            var what = $"gpt2 case {c.GetProperty("id").GetInt32()}";
            var row = classifier.EncodePrompt(text, null);
            CollectionAssert.AreEqual(Ints(c.GetProperty("input_ids")), row.Ids, $"{what} ids");
            Assert.AreEqual(c.GetProperty("position").GetInt32(), row.Position, $"{what} position");
            Assert.AreEqual(c.GetProperty("truncated").GetBoolean(), row.Truncated, $"{what} truncated");
            AssertLabelWords(c, classifier.ScoreLabelWords([text], null)[0], classifier.PredictProbabilities([text], null)[0], what);
        }
    }

    [TestMethod]
    [DataRow(false, "sum")]
    [DataRow(true, "mean")]
    public void Gpt2MultiTokenLabelWordsMatchTeacherForcedHuggingFace(bool lengthNormalized, string field)
    {
        var expected = Expected("gpt2");
        using var classifier = Gpt2("{text}", Words(expected, "multi_token_label_words"), lengthNormalized);
        Assert.IsTrue(classifier.LabelWordTokenIds.All(t => t.Count > 1), "the fixture's multi-token words split");
        foreach (var c in expected.GetProperty("cases").EnumerateArray())
        {
            var scores = classifier.ScoreLabelWords([c.GetProperty("text").GetString()!], null)[0];
            var words = c.GetProperty("multi_token_label_words").EnumerateArray().ToArray();
            for (var k = 0; k < words.Length; k++)
            {
                CollectionAssert.AreEqual(Ints(words[k].GetProperty("token_ids")), classifier.LabelWordTokenIds[k].ToArray());
                AssertClose(words[k].GetProperty(field).GetDouble(), scores[k], LogSoftmaxTolerance, $"gpt2 case {c.GetProperty("id").GetInt32()} '{words[k].GetProperty("word").GetString()}' {field}");
            }
        }
    }

    [TestMethod]
    [DataRow(PaddingSide.Right, false)]
    [DataRow(PaddingSide.Left, false)]
    [DataRow(PaddingSide.Right, true)]
    [DataRow(PaddingSide.Left, true)]
    public void Gpt2PaddedBatchesEqualSingleRows(PaddingSide side, bool multiToken)
    {
        var expected = Expected("gpt2");
        var words = multiToken ? [.. Words(expected), .. Words(expected, "multi_token_label_words")] : Words(expected);
        using var classifier = Gpt2("{text}", words);
        classifier.Padding = side;
        var texts = expected.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("text").GetString()!).ToList();
        var batched = classifier.ScoreLabelWords(texts, null, batchSize: 64);
        for (var i = 0; i < texts.Count; i++)
        {
            var single = classifier.ScoreLabelWords([texts[i]], null)[0];
            for (var k = 0; k < words.Length; k++)
            {
                AssertClose(single[k], batched[i][k], 1e-5, $"{side}-padded row {i} word {k}");
            }
        }

        var probabilities = classifier.PredictProbabilities(texts, null, batchSize: 3);
        foreach (var (c, i) in expected.GetProperty("cases").EnumerateArray().Select((c, i) => (c, i)))
        {
            var first = c.GetProperty("label_words").GetArrayLength();
            for (var k = 0; k < first; k++)
            {
                AssertClose(c.GetProperty("label_words")[k].GetProperty("log_softmax").GetDouble(), batched[i][k], LogSoftmaxTolerance, $"{side}-padded case {i} word {k}");
            }

            Assert.AreEqual(1.0, probabilities[i].Sum(), 1e-5);
        }
    }

    [TestMethod]
    public void Gpt2FewShotPromptIsAssembledAsHuggingFaceTokenizesIt()
    {
        // Case 2 is "Review: great fun. Sentiment: positive\nReview: a waste of time. Sentiment:": one demonstration.
        var expected = Expected("gpt2");
        var c = expected.GetProperty("cases")[2];
        using var classifier = Gpt2("Review: {text} Sentiment:", Words(expected));
        classifier.SetDemonstrations([new Demonstration("great fun.", null, 0)]);
        var row = classifier.EncodePrompt("a waste of time.", null);
        CollectionAssert.AreEqual(Ints(c.GetProperty("input_ids")), row.Ids);
        AssertLabelWords(c, classifier.ScoreLabelWords(["a waste of time."], null)[0], classifier.PredictProbabilities(["a waste of time."], null)[0], "gpt2 few-shot");
    }

    [TestMethod]
    [DynamicData(nameof(Encoders))]
    public void EncoderLabelWordsAtTheMaskMatchHuggingFace(string family)
    {
        var expected = Expected(family);
        var mask = expected.GetProperty("mask_token").GetString()!;
        var words = Words(expected);
        var tested = 0;
        var texts = new List<string>();
        var templates = new List<string>();
        foreach (var c in expected.GetProperty("cases").EnumerateArray())
        {
            if (c.GetProperty("text_pair").ValueKind != JsonValueKind.Null)
            {
                continue; // pairs: our templates are one sequence (PET style), HuggingFace's pair encoding has two segments
            }

            // The template keeps what comes before the first mask; the rest is the text, so truncation cuts its end as HuggingFace does.
            var text = c.GetProperty("text").GetString()!;
            var at = text.IndexOf(mask, StringComparison.Ordinal);
            var template = text[..at].Replace("{", "{{", StringComparison.Ordinal).Replace("}", "}}", StringComparison.Ordinal) + "{mask}{text}";
            var input = text[(at + mask.Length)..];
            using var classifier = PromptClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny-lm", family), [.. words.Select(w => w.Trim())], ClassifierKind.Encoder,
                new PromptOptions { Template = template, LabelWords = words }, maxLength: 32, seed: 1, out var report);
            Assert.IsTrue(report!.IsComplete, report.ToString());
            var what = $"{family} case {c.GetProperty("id").GetInt32()}";
            var row = classifier.EncodePrompt(input, null);
            CollectionAssert.AreEqual(Ints(c.GetProperty("input_ids")), row.Ids, $"{what} ids");
            Assert.AreEqual(c.GetProperty("position").GetInt32(), row.Position, $"{what} mask position");
            Assert.AreEqual(c.GetProperty("truncated").GetBoolean(), row.Truncated, $"{what} truncated");
            AssertLabelWords(c, classifier.ScoreLabelWords([input], null)[0], classifier.PredictProbabilities([input], null)[0], what);
            tested++;
        }

        Assert.IsTrue(tested >= 5, $"only {tested} single-text cases");
    }

    [TestMethod]
    [DynamicData(nameof(Encoders))]
    public void EncoderPaddedBatchesEqualSingleRows(string family)
    {
        var expected = Expected(family);
        var words = Words(expected);
        using var classifier = PromptClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny-lm", family), [.. words.Select(w => w.Trim())], ClassifierKind.Encoder,
            new PromptOptions { LabelWords = words }, maxLength: 32, seed: 1, out _);
        string[] texts = ["I loved it.", "The plot was dull and the acting was even worse, a deliberately long review that keeps going well past the limit.", "", "great"];
        var batched = classifier.ScoreLabelWords(texts, null);
        for (var i = 0; i < texts.Length; i++)
        {
            var single = classifier.ScoreLabelWords([texts[i]], null)[0];
            for (var k = 0; k < words.Length; k++)
            {
                AssertClose(single[k], batched[i][k], 1e-5, $"{family} row {i} word {k}");
            }
        }
    }
}
