using Microsoft.ML;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Tests.Training;
using MLNetTransformerExtensions.Training;
using static MLNetTransformerExtensions.Tests.MLNet.TextClassificationTestData;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>The inference precision through ML.NET: the trainer option, the transformer's property, and the model file.</summary>
[TestClass]
public sealed class InferencePrecisionCatalogTests
{
    /// <summary>As in InferencePrecisionTests: bfloat16 moves the tiny models' probabilities by at most 0.015.</summary>
    private const double ProbabilityTolerance = 0.03;

    private static IDataView Reviews(MLContext ml, int count, int seed)
    {
        var (texts, labels) = SyntheticReviews.Binary(count, seed);
        return ml.Data.LoadFromEnumerable(texts.Select((t, i) => new TransformerClassifierCatalogTests.BinaryReview { Text = t, Label = labels[i] == 1 }));
    }

    private static float[] Probabilities(MLContext ml, ITransformer model, IDataView data) =>
        [.. ml.Data.CreateEnumerable<PromptStrategyCatalogTests.BinaryOutput>(model.Transform(data), reuseRowObject: false).Select(o => o.Probability)];

    private static double LargestDifference(float[] a, float[] b) => a.Zip(b, (x, y) => (double)Math.Abs(x - y)).Max();

    [TestMethod]
    [DataRow(ClassificationStrategy.Head, "hf-tiny")]
    [DataRow(ClassificationStrategy.Prompt, "hf-tiny-lm")]
    public void TheOptionScoresInBFloat16AndTheModelFileKeepsIt(ClassificationStrategy strategy, string fixtures)
    {
        var ml = new MLContext(seed: 1);
        var data = Reviews(ml, 40, seed: 61);
        var model = ml.BinaryClassification.Trainers.DecoderClassifier(new DecoderClassifierOptions
        {
            ModelPath = TestPaths.Fixtures(fixtures, "gpt2"),
            Strategy = strategy,
            NumberOfEpochs = 0,
            BatchSize = 16,
            InferencePrecision = InferencePrecision.BFloat16,
        }).Fit(data);
        Assert.AreEqual(InferencePrecision.BFloat16, model.InferencePrecision);
        var bfloat16 = Probabilities(ml, model, data);

        var work = TestPaths.NewTempDirectory();
        try
        {
            var zip = Path.Combine(work, "model.zip");
            ml.Model.Save(model, data.Schema, zip);
            var loaded = (TextClassificationTransformer)new MLContext(seed: 9).Model.Load(zip, out _);
            Assert.AreEqual(InferencePrecision.BFloat16, loaded.InferencePrecision);
            CollectionAssert.AreEqual(bfloat16, Probabilities(ml, loaded, data), "a loaded bfloat16 model scores as before");

            // The property switches an existing transformer; float32 is within the tolerance and not identical.
            loaded.InferencePrecision = InferencePrecision.Float32;
            var float32 = Probabilities(ml, loaded, data);
            var difference = LargestDifference(float32, bfloat16);
            Assert.IsLessThanOrEqualTo(ProbabilityTolerance, difference);
            Assert.IsGreaterThan(0.0, difference, "the bfloat16 model gave exactly the float32 probabilities");

            // Saving a bfloat16 model wrote the float32 weights: switched back to float32, both files score the same.
            model.InferencePrecision = InferencePrecision.Float32;
            CollectionAssert.AreEqual(float32, Probabilities(ml, model, data));
            loaded.Dispose();
        }
        finally
        {
            model.Dispose();
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    public void AModelFileOfTheFormerVersionLoadsInFloat32()
    {
        // Written before the precision field existed (see Fixtures/mlnet-format/README.md): the header's model signature
        // is followed by the version the file was written in.
        var path = TestPaths.Fixtures("mlnet-format", "text-classifier-0x00010001.zip");
        using (var zip = System.IO.Compression.ZipFile.OpenRead(path))
        {
            using var stream = new MemoryStream();
            zip.Entries.Single(e => e.FullName.EndsWith("Model.key", StringComparison.Ordinal)).Open().CopyTo(stream);
            var header = stream.ToArray();
            var signature = header.AsSpan().IndexOf("TXTCLSFR"u8);
            Assert.AreEqual(0x00010001u, BitConverter.ToUInt32(header, signature + 8));
        }

        var ml = new MLContext(seed: 1);
        var loaded = Find(ml.Model.Load(path, out _));
        Assert.AreEqual(InferencePrecision.Float32, loaded.InferencePrecision);

        var data = ml.Data.LoadFromEnumerable(SentimentRows(40));
        var fitted = BinaryEstimator(ml, new FakeNaiveBayesTrainer()).Fit(data);
        var expected = ml.Data.CreateEnumerable<SentimentPrediction>(fitted.Transform(data), reuseRowObject: false).Select(p => p.Probability).ToArray();
        var actual = ml.Data.CreateEnumerable<SentimentPrediction>(loaded.Transform(data), reuseRowObject: false).Select(p => p.Probability).ToArray();
        CollectionAssert.AreEqual(expected, actual);
    }

    [TestMethod]
    public void AClassifierThatScoresOnlyInFloat32RefusesBFloat16()
    {
        var ml = new MLContext(seed: 1);
        using var model = BinaryEstimator(ml, new FakeNaiveBayesTrainer()).Fit(ml.Data.LoadFromEnumerable(SentimentRows(20)));
        Assert.AreEqual(InferencePrecision.Float32, model.InferencePrecision);
        model.InferencePrecision = InferencePrecision.Float32;
        var error = Assert.ThrowsExactly<NotSupportedException>(() => model.InferencePrecision = InferencePrecision.BFloat16);
        StringAssert.Contains(error.Message, FakeNaiveBayesClassifier.Kind);
    }

    [TestMethod]
    public void AnUndefinedPrecisionIsRefusedBeforeTraining()
    {
        var ml = new MLContext(seed: 1);
        var options = new EncoderClassifierOptions { ModelPath = TestPaths.Fixtures("hf-tiny", "bert"), InferencePrecision = (InferencePrecision)3 };
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.BinaryClassification.Trainers.EncoderClassifier(options));
        StringAssert.Contains(error.Message, "InferencePrecision");
    }
}
