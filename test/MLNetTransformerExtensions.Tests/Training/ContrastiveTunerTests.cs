using MLNetTransformerExtensions.Builtin;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.Training;

/// <summary>SetFit's pairs are balanced and seeded, and training on them pulls same-label texts together.</summary>
[TestClass]
public sealed class ContrastiveTunerTests
{
    [TestMethod]
    public void PairsAreBalancedSeededAndTrueToTheLabels()
    {
        int[] labels = [0, 0, 0, 1, 1, 2, 2, 2, 2];
        var pairs = ContrastivePairs.Generate(labels, iterations: 3, pairCount: null, seed: 7);

        Assert.HasCount(2 * 3 * labels.Length, pairs);
        Assert.AreEqual(pairs.Count / 2, pairs.Count(p => p.Similar), "as many positive as negative pairs");
        Assert.IsTrue(pairs.All(p => p.Similar == (labels[p.First] == labels[p.Second])));
        CollectionAssert.AreEquivalent(
            Enumerable.Range(0, labels.Length).SelectMany(i => Enumerable.Repeat(i, 6)).ToList(), pairs.Select(p => p.First).ToList(),
            "each round pairs every row once with a positive and once with a negative");
        CollectionAssert.AreEqual(pairs, ContrastivePairs.Generate(labels, 3, null, seed: 7), "the same seed draws the same pairs");
        CollectionAssert.AreNotEqual(pairs, ContrastivePairs.Generate(labels, 3, null, seed: 8));

        Assert.HasCount(11, ContrastivePairs.Generate(labels, iterations: 3, pairCount: 11, seed: 7));
        Assert.ThrowsExactly<ArgumentException>(() => ContrastivePairs.Generate([1, 1, 1], 1, null, 1));
    }

    [TestMethod]
    public void TrainingPullsSameLabelTextsTogether()
    {
        string[] texts =
        [
            "The striker scored twice in the final.", "The team won the championship game.", "A late goal decided the match.",
            "Shares fell as the bank cut its forecast.", "The central bank raised interest rates.", "Stocks rallied after strong earnings.",
        ];
        int[] labels = [0, 0, 0, 1, 1, 1];
        using var encoder = SentenceEncoder.FromFolder(BuiltinModels.Resolve(BuiltinModels.DefaultName));
        var before = Gap(encoder.Embed(texts), labels);
        var progress = new List<TrainingProgress>();

        var count = ContrastiveTuner.Train(encoder, new LabeledTexts(texts, null, labels), iterations: 4, pairCount: null,
            new FineTuningOptions { Epochs = 2, BatchSize = 8, LearningRate = 1e-4, Seed = 3 }, new SyncProgress(progress), CancellationToken.None);

        Assert.AreEqual(2 * 4 * texts.Length, count);
        var after = Gap(encoder.Embed(texts), labels);
        Assert.IsGreaterThan(before + 0.05, after, $"same-label minus other-label cosine: {before:0.000} before, {after:0.000} after");
        Assert.IsTrue(progress.Any(p => p.IsEpochEnd && p.Epoch == 2), "progress reaches the last epoch");
        Assert.ThrowsExactly<OperationCanceledException>(() => ContrastiveTuner.Train(encoder, new LabeledTexts(texts, null, labels), 1, null,
            new FineTuningOptions { Epochs = 1 }, null, new CancellationToken(canceled: true)));
    }

    /// <summary>Mean cosine of same-label pairs minus that of different-label pairs (the vectors are unit length).</summary>
    private static double Gap(float[][] vectors, int[] labels)
    {
        double same = 0, different = 0;
        int sameCount = 0, differentCount = 0;
        for (var a = 0; a < vectors.Length; a++)
        {
            for (var b = a + 1; b < vectors.Length; b++)
            {
                var dot = vectors[a].Zip(vectors[b], (x, y) => (double)x * y).Sum();
                if (labels[a] == labels[b])
                {
                    same += dot;
                    sameCount++;
                }
                else
                {
                    different += dot;
                    differentCount++;
                }
            }
        }

        return (same / sameCount) - (different / differentCount);
    }

    private sealed class SyncProgress(List<TrainingProgress> reports) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => reports.Add(value);
    }
}
