using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.Training;

/// <summary>Scoring (head and prompt) groups rows of similar length into forward passes, and still answers in input order.</summary>
[TestClass]
public sealed class TextClassifierBatchingTests
{
    [TestMethod]
    public void ShortRowsAreCutFromLongOnesWhenThePaddingSavedOutweighsAPass()
    {
        // One pass: 6 × 50 = 300 positions + 10; two passes: 4 × 5 + 2 × 50 = 120 positions + 20.
        CollectionAssert.AreEqual(new[] { 4, 2 }, HeadClassifier.Chunks([5, 5, 5, 5, 50, 50], batchSize: 32, passCost: 10));

        // A pass dearer than all the padding: one pass.
        CollectionAssert.AreEqual(new[] { 6 }, HeadClassifier.Chunks([5, 5, 5, 5, 50, 50], batchSize: 32, passCost: 1000));

        // Equal lengths never gain from a cut; the batch size still bounds a pass.
        var passes = HeadClassifier.Chunks([7, 7, 7, 7, 7, 7, 7, 7, 7, 7], batchSize: 4, passCost: 0.5);
        Assert.AreEqual((3, 10), (passes.Count, passes.Sum()), string.Join(", ", passes));
        Assert.IsTrue(passes.All(p => p is >= 1 and <= 4), string.Join(", ", passes));
        Assert.IsEmpty(HeadClassifier.Chunks([], batchSize: 4, passCost: 1));
    }

    [TestMethod]
    public void ProbabilitiesComeBackInInputOrderWhateverThePasses()
    {
        using var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "bert"), ["a", "b", "c"], ClassifierKind.Encoder, 64, seed: 3, out _);
        AssertInputOrder(Texts, classifier.PredictProbabilities);
    }

    [TestMethod]
    [DataRow("gpt2", ClassifierKind.Decoder)]
    [DataRow("bert", ClassifierKind.Encoder)]
    public void PromptScoresComeBackInInputOrderWhateverThePasses(string family, ClassifierKind kind)
    {
        // Multi-token label words: a decoder scores each row once per continuation.
        using var classifier = PromptClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny-lm", family), ["negative", "positive"], kind,
            new PromptOptions { LabelWords = kind == ClassifierKind.Decoder ? [" awful film", " great"] : null }, 64, seed: 1, out _);
        AssertInputOrder(Texts, classifier.PredictProbabilities);
    }

    private static readonly string[] Texts =
    [
        "a long sentence about a film that goes on and on with many words in it to make it long",
        "short",
        "a middling sentence of some words",
        "tiny",
        "another long sentence about the acting , the music , the story and the ending of the film",
        "ok",
    ];

    private static void AssertInputOrder(string[] texts, Func<IReadOnlyList<string>, IReadOnlyList<string>?, int, float[][]> predict)
    {
        var together = predict(texts, null, 64);
        for (var i = 0; i < texts.Length; i++)
        {
            var alone = predict([texts[i]], null, 64)[0];
            for (var k = 0; k < alone.Length; k++)
            {
                Assert.AreEqual(alone[k], together[i][k], 1e-5, $"row {i}, class {k}");
            }
        }
    }
}
