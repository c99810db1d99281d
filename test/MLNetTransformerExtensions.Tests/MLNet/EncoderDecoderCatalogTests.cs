using Microsoft.ML;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Tests.Training;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>
/// Encoder-decoders through ML.NET: BART's classification head and BART/T5 text-to-text (the prompt strategy), with
/// fitting, saving, loading into a new context and PredictionEngine.
/// </summary>
[TestClass]
public sealed class EncoderDecoderCatalogTests
{
    private static string Fixture(string name) => TestPaths.Fixtures("hf-tiny-seq2seq", name);

    private static IDataView Reviews(MLContext ml, int count, int seed)
    {
        var (texts, labels) = SyntheticReviews.Binary(count, seed);
        return ml.Data.LoadFromEnumerable(texts.Select((t, i) => new TransformerClassifierCatalogTests.BinaryReview { Text = t, Label = labels[i] == 1 }));
    }

    private static void AssertRoundTrip(MLContext ml, ITransformer model, IDataView data)
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var zip = Path.Combine(work, "model.zip");
            ml.Model.Save(model, data.Schema, zip);
            var context = new MLContext(seed: 9);
            var loaded = context.Model.Load(zip, out _);
            float[] Probabilities(ITransformer m) => [.. ml.Data.CreateEnumerable<PromptStrategyCatalogTests.BinaryOutput>(m.Transform(data), reuseRowObject: false).Select(o => o.Probability)];
            CollectionAssert.AreEqual(Probabilities(model), Probabilities(loaded));
            var engine = context.Model.CreatePredictionEngine<TransformerClassifierCatalogTests.BinaryReview, SentimentPrediction>(loaded);
            var prediction = engine.Predict(new TransformerClassifierCatalogTests.BinaryReview { Text = "a wonderful, moving film" });
            Assert.IsTrue(prediction.Probability is >= 0 and <= 1);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    public void BartsHeadFineTunesSavesAndLoads()
    {
        var ml = new MLContext(seed: 1);
        var data = Reviews(ml, 24, seed: 61);
        var model = ml.BinaryClassification.Trainers.EncoderDecoderClassifier(
            modelPath: Fixture("bart"), numberOfEpochs: 1, batchSize: 8, learningRate: 1e-3, maximumLength: 32).Fit(data);
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(data));
        Assert.AreEqual(24, metrics.ConfusionMatrix.Counts.Sum(r => r.Sum()));
        AssertRoundTrip(ml, model, data);
    }

    [TestMethod]
    [DataRow("t5", "False=negative,True=positive")]
    [DataRow("t5-v1_1", "False=no,True=yes")]
    [DataRow("bart-lm", "False= negative,True= positive")]
    public void TextToTextWorksZeroShotFineTunedAndRoundTrips(string name, string labelWords)
    {
        var ml = new MLContext(seed: 1);
        var data = Reviews(ml, 24, seed: 62);
        foreach (var epochs in new[] { 0, 1 })
        {
            var model = ml.BinaryClassification.Trainers.EncoderDecoderClassifier(new EncoderDecoderClassifierOptions
            {
                ModelPath = Fixture(name),
                Strategy = ClassificationStrategy.Prompt,
                PromptTemplate = "sst2 sentence: {text}",
                LabelWords = labelWords,
                NumberOfEpochs = epochs,
                BatchSize = 8,
                LearningRate = 1e-3,
                MaximumLength = 32,
                Calibrate = epochs == 0,
            }).Fit(data);
            AssertRoundTrip(ml, model, data);
        }
    }

    [TestMethod]
    public void T5HasNoHeadAndSaysSo()
    {
        var ml = new MLContext(seed: 1);
        var error = Assert.ThrowsExactly<InvalidDataException>(() =>
            ml.BinaryClassification.Trainers.EncoderDecoderClassifier(modelPath: Fixture("t5"), numberOfEpochs: 0).Fit(Reviews(ml, 4, seed: 1)));
        StringAssert.Contains(error.Message, "prompt strategy");

        error = Assert.ThrowsExactly<InvalidDataException>(() =>
            ml.BinaryClassification.Trainers.EncoderClassifier(modelPath: Fixture("bart"), numberOfEpochs: 0).Fit(Reviews(ml, 4, seed: 1)));
        StringAssert.Contains(error.Message, "EncoderDecoderClassifier");
    }
}
