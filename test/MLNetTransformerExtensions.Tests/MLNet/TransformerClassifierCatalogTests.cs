using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Tests.Training;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>The real transformer trainers through ML.NET's own API, end to end, on tiny checkpoints.</summary>
[TestClass]
public sealed class TransformerClassifierCatalogTests
{
    public sealed class Review
    {
        [LoadColumn(0)]
        public string Label { get; set; } = string.Empty;

        [LoadColumn(1)]
        public string Text { get; set; } = string.Empty;
    }

    public sealed class Prediction
    {
        public string PredictedLabel { get; set; } = string.Empty;

        public float[] Score { get; set; } = [];
    }

    public sealed class BinaryReview
    {
        public bool Label { get; set; }

        public string Text { get; set; } = string.Empty;
    }

    private static string WriteTsv(string folder, (List<string> Texts, List<int> Labels) data, string[] names)
    {
        var path = Path.Combine(folder, "reviews.tsv");
        File.WriteAllLines(path, ["Label\tText", .. data.Texts.Select((t, i) => $"{names[data.Labels[i]]}\t{t}")]);
        return path;
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void TheReadmePipelineTrainsEvaluatesSavesAndLoads()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var path = WriteTsv(work, SyntheticReviews.ThreeClasses(300, seed: 21), ["negative", "neutral", "positive"]);
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromTextFile<Review>(path, hasHeader: true);
            var split = ml.Data.TrainTestSplit(data, testFraction: 0.2, seed: 1);
            var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
                .Append(ml.MulticlassClassification.Trainers.EncoderClassifier(new EncoderClassifierOptions
                {
                    LabelColumnName = "Label",
                    TextColumnName = "Text",
                    ModelPath = TestPaths.Fixtures("hf-tiny", "bert"),
                    NumberOfEpochs = 20,
                    BatchSize = 16,
                    LearningRate = 1e-3,
                    MaximumLength = 32,
                }))
                .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
            var model = pipeline.Fit(split.TrainSet);
            var metrics = ml.MulticlassClassification.Evaluate(model.Transform(split.TestSet));
            Assert.IsTrue(metrics.MacroAccuracy > 0.85, $"macro accuracy {metrics.MacroAccuracy:P1}");

            var zip = Path.Combine(work, "model.zip");
            ml.Model.Save(model, data.Schema, zip);
            var fresh = new MLContext(seed: 2);
            var loaded = fresh.Model.Load(zip, out _);
            var before = ml.Data.CreateEnumerable<Prediction>(model.Transform(split.TestSet), reuseRowObject: false).ToList();
            var after = fresh.Data.CreateEnumerable<Prediction>(loaded.Transform(split.TestSet), reuseRowObject: false).ToList();
            Assert.AreEqual(before.Count, after.Count);
            for (var i = 0; i < before.Count; i++)
            {
                Assert.AreEqual(before[i].PredictedLabel, after[i].PredictedLabel);
                CollectionAssert.AreEqual(before[i].Score, after[i].Score, $"row {i}");
            }

            var engine = fresh.Model.CreatePredictionEngine<Review, Prediction>(loaded);
            var single = engine.Predict(new Review { Text = "what a wonderful evening at the cinema" });
            Assert.AreEqual("positive", single.PredictedLabel);
            Assert.AreEqual(1.0, single.Score.Sum(), 1e-5);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void ADecoderClassifierTrainsOnTheBinaryCatalogAndCrossValidates()
    {
        var (texts, labels) = SyntheticReviews.Binary(240, seed: 22);
        var ml = new MLContext(seed: 3);
        var data = ml.Data.LoadFromEnumerable(texts.Select((t, i) => new BinaryReview { Text = t, Label = labels[i] == 1 }));
        var trainer = ml.BinaryClassification.Trainers.DecoderClassifier(
            modelPath: TestPaths.Fixtures("hf-tiny", "gpt2"), numberOfEpochs: 20, batchSize: 16, learningRate: 1e-3, maximumLength: 32);
        var results = ml.BinaryClassification.CrossValidate(data, trainer, numberOfFolds: 2);
        Assert.AreEqual(2, results.Count);
        foreach (var fold in results)
        {
            Assert.IsTrue(fold.Metrics.Accuracy > 0.85, $"fold accuracy {fold.Metrics.Accuracy:P1}");
        }
    }

    [TestMethod]
    public void AModelOfTheWrongFamilyIsAClearError()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new BinaryReview { Text = "a", Label = true }, new BinaryReview { Text = "b", Label = false } });
        var trainer = ml.BinaryClassification.Trainers.EncoderClassifier(modelPath: TestPaths.Fixtures("hf-tiny", "gpt2"));
        var error = Assert.ThrowsExactly<InvalidDataException>(() => trainer.Fit(data));
        StringAssert.Contains(error.Message, "DecoderClassifier");
    }
}

/// <summary>The prompt strategy through ML.NET: zero-shot scoring, fine-tuning, save and load.</summary>
[TestClass]
public sealed class PromptStrategyCatalogTests
{
    [TestMethod]
    public void APromptClassifierWorksZeroShotAndRoundTripsThroughAModelFile()
    {
        var (texts, labels) = SyntheticReviews.Binary(40, seed: 51);
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(texts.Select((t, i) => new TransformerClassifierCatalogTests.BinaryReview { Text = t, Label = labels[i] == 1 }));
        var trainer = ml.BinaryClassification.Trainers.DecoderClassifier(new DecoderClassifierOptions
        {
            ModelPath = TestPaths.Fixtures("hf-tiny-lm", "gpt2"),
            Strategy = ClassificationStrategy.Prompt,
            PromptTemplate = "Review: {text} Sentiment:",
            LabelWords = "False= negative,True= positive",
            NumberOfEpochs = 0,
            Calibrate = true,
        });
        var model = trainer.Fit(data);
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(data));
        Assert.AreEqual(40, metrics.ConfusionMatrix.Counts.Sum(r => r.Sum()));

        var work = TestPaths.NewTempDirectory();
        try
        {
            var zip = Path.Combine(work, "prompt.zip");
            ml.Model.Save(model, data.Schema, zip);
            var loaded = new MLContext(seed: 9).Model.Load(zip, out _);
            float[] Probabilities(ITransformer m) => ml.Data.CreateEnumerable<BinaryOutput>(m.Transform(data), reuseRowObject: false).Select(o => o.Probability).ToArray();
            CollectionAssert.AreEqual(Probabilities(model), Probabilities(loaded));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void AnEncoderPromptLearnsOnTheMulticlassCatalog()
    {
        var (texts, labels) = SyntheticReviews.Binary(160, seed: 52);
        var ml = new MLContext(seed: 2);
        var data = ml.Data.LoadFromEnumerable(texts.Select((t, i) => new TransformerClassifierCatalogTests.Review { Text = t, Label = labels[i] == 1 ? "positive" : "negative" }));
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.EncoderClassifier(new EncoderClassifierOptions
        {
            ModelPath = TestPaths.Fixtures("hf-tiny-lm", "distilbert"),
            Strategy = ClassificationStrategy.Prompt,
            LabelWords = "positive=good,negative=bad",
            NumberOfEpochs = 20,
            BatchSize = 16,
            LearningRate = 1e-3,
            MaximumLength = 32,
        }));
        var metrics = ml.MulticlassClassification.Evaluate(pipeline.Fit(data).Transform(data));
        Assert.IsTrue(metrics.MicroAccuracy >= 0.9, $"training accuracy {metrics.MicroAccuracy:P1}");
    }

    public sealed class BinaryOutput
    {
        public float Probability { get; set; }
    }
}

/// <summary>Scoring a long stream of rows through the real model holds one batch at a time.</summary>
[TestClass]
public sealed class StreamingTransformTests
{
    private static IEnumerable<TransformerClassifierCatalogTests.BinaryReview> Rows(int count)
    {
        for (var i = 0; i < count; i++)
        {
            yield return new TransformerClassifierCatalogTests.BinaryReview { Text = $"review number {i} was {(i % 2 == 0 ? "great" : "awful")} .", Label = i % 2 == 0 };
        }
    }

    [TestMethod]
    public void TransformingManyRowsDoesNotGrowMemory()
    {
        var ml = new MLContext(seed: 1);
        var model = ml.BinaryClassification.Trainers.EncoderClassifier(modelPath: TestPaths.Fixtures("hf-tiny", "bert"), numberOfEpochs: 0, batchSize: 64)
            .Fit(ml.Data.LoadFromEnumerable(Rows(8)));

        long Pass(int rows)
        {
            var scored = model.Transform(ml.Data.LoadFromEnumerable(Rows(rows)));
            using var cursor = scored.GetRowCursor(scored.Schema);
            var probability = cursor.GetGetter<float>(scored.Schema["Probability"]);
            float value = 0;
            long seen = 0;
            while (cursor.MoveNext())
            {
                probability(ref value);
                seen++;
            }

            return seen;
        }

        Pass(256);
        var tensorsBefore = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var managedBefore = GC.GetTotalMemory(forceFullCollection: true);
        Assert.AreEqual(6000, Pass(6000));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var managedGrowth = GC.GetTotalMemory(forceFullCollection: true) - managedBefore;
        Assert.AreEqual(tensorsBefore, TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount, "live tensors grew while streaming");
        Assert.IsTrue(managedGrowth < 8 * 1024 * 1024, $"managed memory grew by {managedGrowth / 1024} KiB over 6000 rows");
    }
}
