using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>
/// SetFit through both catalogs: Fit on a few examples per class → Transform → Evaluate → Save → Load in a new
/// MLContext → PredictionEngine; the linear probe (no contrastive step); seeds and errors.
/// </summary>
[TestClass]
public sealed class SetFitTests
{
    public sealed class TopicRow
    {
        public string Text { get; set; } = string.Empty;

        public string Label { get; set; } = string.Empty;
    }

    public sealed class SentimentRow
    {
        public string Text { get; set; } = string.Empty;

        public bool Label { get; set; }
    }

    public sealed class TopicPrediction
    {
        public float[] Score { get; set; } = [];

        public string PredictedLabel { get; set; } = string.Empty;
    }

    private static readonly TopicRow[] s_train =
    [
        new() { Text = "The striker scored twice in the final.", Label = "sports" },
        new() { Text = "The team won the championship game.", Label = "sports" },
        new() { Text = "A late goal decided the football match.", Label = "sports" },
        new() { Text = "Shares fell as the bank cut its forecast.", Label = "business" },
        new() { Text = "The central bank raised interest rates.", Label = "business" },
        new() { Text = "Stocks rallied after strong earnings.", Label = "business" },
        new() { Text = "The new phone has a faster chip.", Label = "tech" },
        new() { Text = "The software update fixes a security bug.", Label = "tech" },
        new() { Text = "Engineers unveiled a smaller laptop.", Label = "tech" },
    ];

    private static readonly TopicRow[] s_test =
    [
        new() { Text = "The goalkeeper saved a penalty in extra time.", Label = "sports" },
        new() { Text = "The company's profits doubled this quarter.", Label = "business" },
        new() { Text = "A new processor makes computers faster.", Label = "tech" },
    ];

    private static IEstimator<ITransformer> Pipeline(MLContext ml, SetFitOptions options) =>
        ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.SetFit(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

    [TestMethod]
    public void MulticlassSetFitLearnsSavesLoadsAndPredicts()
    {
        var ml = new MLContext(seed: 1);
        var reports = new List<TrainingProgress>();
        var model = Pipeline(ml, new SetFitOptions { NumberOfIterations = 2, Progress = new Progress(reports) }).Fit(ml.Data.LoadFromEnumerable(s_train));
        Assert.IsTrue(reports.Any(r => r.IsEpochEnd), "the contrastive step reports progress");

        var test = ml.Data.LoadFromEnumerable(s_test);
        var scored = model.Transform(test);
        Assert.AreEqual(1.0, ml.MulticlassClassification.Evaluate(scored).MicroAccuracy);
        var scores = scored.GetColumn<float[]>("Score").ToList();

        var path = Path.Combine(TestPaths.NewTempDirectory(), "setfit.zip");
        try
        {
            ml.Model.Save(model, test.Schema, path);
            var other = new MLContext(seed: 5);
            var loaded = other.Model.Load(path, out _);
            var again = loaded.Transform(other.Data.LoadFromEnumerable(s_test)).GetColumn<float[]>("Score").ToList();
            for (var i = 0; i < scores.Count; i++)
            {
                CollectionAssert.AreEqual(scores[i], again[i], $"row {i} after loading");
            }

            var engine = other.Model.CreatePredictionEngine<TopicRow, TopicPrediction>(loaded);
            Assert.AreEqual("tech", engine.Predict(new TopicRow { Text = "The chip maker released a faster graphics card." }).PredictedLabel);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }

    [TestMethod]
    public void TheLinearProbeAndTheBinaryCatalogWork()
    {
        var ml = new MLContext(seed: 1);
        var probe = Pipeline(ml, new SetFitOptions { NumberOfEpochs = 0 }).Fit(ml.Data.LoadFromEnumerable(s_train));
        Assert.AreEqual(1.0, ml.MulticlassClassification.Evaluate(probe.Transform(ml.Data.LoadFromEnumerable(s_test))).MicroAccuracy);

        SentimentRow[] train =
        [
            new() { Text = "I loved this film, a delight.", Label = true }, new() { Text = "A wonderful, moving story.", Label = true },
            new() { Text = "Great acting and a great script.", Label = true }, new() { Text = "I hated every minute of it.", Label = false },
            new() { Text = "A dull, boring mess.", Label = false }, new() { Text = "The worst movie of the year.", Label = false },
        ];
        var binary = ml.BinaryClassification.Trainers.SetFit(numberOfIterations: 2).Fit(ml.Data.LoadFromEnumerable(train));
        var scored = binary.Transform(ml.Data.LoadFromEnumerable(new SentimentRow[]
        {
            new() { Text = "An excellent, joyful film.", Label = true }, new() { Text = "Awful and tedious.", Label = false },
        }));
        var metrics = ml.BinaryClassification.Evaluate(scored);
        Assert.AreEqual(1.0, metrics.Accuracy);
    }

    [TestMethod]
    public void AValidationSetIsClassifiedByTheWholeModelAfterEachEpoch()
    {
        var ml = new MLContext(seed: 1);
        var validation = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(s_train)).Transform(ml.Data.LoadFromEnumerable(s_test));
        var reports = new List<TrainingProgress>();
        var model = Pipeline(ml, new SetFitOptions { NumberOfIterations = 2, NumberOfEpochs = 2, ValidationSet = validation, Progress = new Progress(reports) })
            .Fit(ml.Data.LoadFromEnumerable(s_train));

        var epochs = reports.Where(r => r.IsEpochEnd).ToList();
        CollectionAssert.AreEqual(new[] { 1, 2 }, epochs.Select(r => r.Epoch).ToArray());
        Assert.IsTrue(epochs.All(r => r.ValidationAccuracy is not null && r.ValidationLogLoss > 0), "each epoch classifies the validation rows");
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(s_test)));
        Assert.AreEqual(metrics.MicroAccuracy, epochs[^1].ValidationAccuracy!.Value, 1e-9, "the last epoch's model is the one fitted");
        Assert.AreEqual(metrics.LogLoss, epochs[^1].ValidationLogLoss!.Value, 1e-4);

        var log = new List<string>();
        ml.Log += (_, e) => log.Add(e.Message);
        Pipeline(ml, new SetFitOptions { NumberOfEpochs = 0, ValidationSet = validation }).Fit(ml.Data.LoadFromEnumerable(s_train));
        Assert.IsTrue(log.Any(m => m.Contains("Validation accuracy of the linear probe: 100.00 % on 3 rows.", StringComparison.Ordinal)),
            "a linear probe has no epochs to report it: the log has it");
    }

    [TestMethod]
    public void TheSameSeedGivesTheSameModel()
    {
        float[] Scores(int seed)
        {
            var ml = new MLContext(seed);
            var model = Pipeline(ml, new SetFitOptions { NumberOfPairs = 24 }).Fit(ml.Data.LoadFromEnumerable(s_train));
            return model.Transform(ml.Data.LoadFromEnumerable(s_test)).GetColumn<float[]>("Score").First();
        }

        CollectionAssert.AreEqual(Scores(3), Scores(3));
    }

    [TestMethod]
    public void OptionsAreCheckedAndCancellationStopsFit()
    {
        var ml = new MLContext(seed: 1);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.SetFit(new SetFitOptions { NumberOfIterations = 0 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.SetFit(new SetFitOptions { PairBatchSize = 0 }));
        Assert.ThrowsExactly<ArgumentException>(() => ml.MulticlassClassification.Trainers.SetFit(new SetFitOptions { SecondTextColumnName = "Other" }));
        Assert.ThrowsExactly<OperationCanceledException>(() =>
            Pipeline(ml, new SetFitOptions { CancellationToken = new CancellationToken(canceled: true) }).Fit(ml.Data.LoadFromEnumerable(s_train)));
    }

    private sealed class Progress(List<TrainingProgress> reports) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => reports.Add(value);
    }
}
