using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.MLNet;
using static MLNetTransformerExtensions.Tests.MLNet.TextClassificationTestData;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>
/// Scoring from several threads gives exactly the serial results: one <c>PredictionEngine</c> per thread (what
/// Microsoft.Extensions.ML's <c>PredictionEnginePool</c> hands out), and <c>Transform</c> of one fitted model read from
/// several threads at once. Engines sharing a model are made with <c>OwnsTransformer = false</c>: by default ML.NET
/// disposes the model when an engine is disposed.
/// </summary>
[TestClass]
public sealed class ConcurrentScoringTests
{
    private const int Threads = 4;

    [TestMethod]
    public void OnePredictionEnginePerThreadScoresAsOneThreadDoes()
    {
        var (ml, model) = Fit();
        var texts = Texts();
        float[][] Score(IEnumerable<int> order)
        {
            // Engines that share one model must not own it: ML.NET's PredictionEngine otherwise disposes the model with itself.
            using var engine = ml.Model.CreatePredictionEngine<SentimentRow, SentimentPrediction>(model, new PredictionEngineOptions { OwnsTransformer = false });
            var scores = new float[texts.Length][];
            foreach (var i in order)
            {
                var prediction = engine.Predict(new SentimentRow { Text = texts[i] });
                scores[i] = [prediction.Score, prediction.Probability];
            }

            return scores;
        }

        var serial = Score(Enumerable.Range(0, texts.Length));
        // Each thread walks the rows in its own order, so the threads score different rows at the same moment.
        var concurrent = RunTogether(t => Score(Enumerable.Range(0, texts.Length).Select(i => (i * (2 * t + 1)) % texts.Length)));

        foreach (var scores in concurrent)
        {
            for (var i = 0; i < texts.Length; i++)
            {
                CollectionAssert.AreEqual(serial[i], scores[i], $"row {i}: '{texts[i]}'");
            }
        }
    }

    [TestMethod]
    public void AnEngineDisposesTheModelOnlyWhenItOwnsIt()
    {
        var (ml, model) = Fit();
        var row = new SentimentRow { Text = "a fine and moving film" };
        PredictionEngine<SentimentRow, SentimentPrediction> Engine(bool owns) =>
            ml.Model.CreatePredictionEngine<SentimentRow, SentimentPrediction>(model, new PredictionEngineOptions { OwnsTransformer = owns });

        float expected;
        using (var first = Engine(owns: false))
        {
            expected = first.Predict(row).Probability;
        }

        using (var second = Engine(owns: false))
        {
            Assert.AreEqual(expected, second.Predict(row).Probability, "an engine that does not own the model leaves it whole when disposed");
        }

        // ML.NET's default (OwnsTransformer = true): disposing the engine disposes the model, weights and all.
        var owning = Engine(owns: true);
        Assert.AreEqual(expected, owning.Predict(row).Probability);
        owning.Dispose();
        Assert.ThrowsExactly<ObjectDisposedException>(() => Engine(owns: false).Predict(row));
    }

    [TestMethod]
    public void TransformFromSeveralThreadsScoresAsOneThreadDoes()
    {
        var (ml, model) = Fit();
        var data = ml.Data.LoadFromEnumerable(Texts().Select(t => new SentimentRow { Text = t }));
        float[] Score() => [.. ml.Data.CreateEnumerable<SentimentPrediction>(model.Transform(data), reuseRowObject: false).Select(p => p.Probability)];

        var serial = Score();
        foreach (var scores in RunTogether(_ => Score()))
        {
            CollectionAssert.AreEqual(serial, scores);
        }
    }

    private static T[] RunTogether<T>(Func<int, T> work)
    {
        // A barrier starts every thread's work at once; no timing is assumed.
        using var start = new Barrier(Threads);
        var threads = Enumerable.Range(0, Threads).Select(t => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            return work(t);
        }, TaskCreationOptions.LongRunning)).ToArray();
        return Task.WhenAll(threads).GetAwaiter().GetResult();
    }

    private static (MLContext Ml, ITransformer Model) Fit()
    {
        var ml = new MLContext(seed: 1);
        var estimator = ml.BinaryClassification.Trainers.EncoderClassifier(new EncoderClassifierOptions
        {
            ModelPath = TestPaths.Fixtures("hf-tiny", "bert"),
            NumberOfEpochs = 1,
            BatchSize = 8,
            MaximumLength = 32,
        });
        return (ml, estimator.Fit(ml.Data.LoadFromEnumerable(SentimentRows(24))));
    }

    // Rows of different lengths, so batches pad differently from row to row.
    private static string[] Texts() =>
        [.. SentimentRows(30, seed: 5).Select((r, i) => i % 3 == 0 ? r.Text + " " + r.Text : r.Text), string.Empty, "ok"];
}
