using Microsoft.ML;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Training;
using static MLNetTransformerExtensions.Tests.MLNet.TextClassificationTestData;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>Token attributions through the fitted transformer: batch independence, saved models, and classifiers that cannot.</summary>
[TestClass]
public sealed class TextClassificationExplainTests
{
    [TestMethod]
    public void ARowsAttributionsDoNotDependOnItsBatchAndSurviveSaving()
    {
        var ml = new MLContext(seed: 1);
        using var model = ml.BinaryClassification.Trainers.EncoderClassifier(modelPath: TestPaths.Fixtures("hf-tiny", "bert"), numberOfEpochs: 0, batchSize: 64)
            .Fit(ml.Data.LoadFromEnumerable(SentimentRows(8)));
        var options = new TokenAttributionOptions { Steps = 8 };
        var both = model.Explain(["a much longer sentence that would pad a batch of two", "short one"], null, options);
        var alone = model.Explain(["short one"], null, options).Single();
        CollectionAssert.AreEqual(alone.Attributions.ToArray(), both[1].Attributions.ToArray());
        CollectionAssert.AreEqual(alone.Tokens.ToArray(), both[1].Tokens.ToArray());
        Assert.AreEqual("[CLS]", alone.Tokens[0]);
        CollectionAssert.Contains(new[] { "False", "True" }, alone.PredictedLabel);

        var path = Path.Combine(TestPaths.NewTempDirectory(), "model.zip");
        try
        {
            ml.Model.Save(model, null, path);
            using var loaded = (TextClassificationTransformer)ml.Model.Load(path, out _);
            CollectionAssert.AreEqual(alone.Attributions.ToArray(), loaded.Explain(["short one"], null, options).Single().Attributions.ToArray());
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }

    [TestMethod]
    public void AClassifierOutsideTheLibrarySaysItCannotExplain()
    {
        var ml = new MLContext(seed: 1);
        using var model = BinaryEstimator(ml, new FakeNaiveBayesTrainer()).Fit(ml.Data.LoadFromEnumerable(SentimentRows(10)));
        var e = Assert.ThrowsExactly<NotSupportedException>(() => model.Explain(["text"]));
        StringAssert.Contains(e.Message, $"'{FakeNaiveBayesClassifier.Kind}' classifier cannot attribute its scores to tokens");
    }
}
