using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.MLNet.Internal;
using static MLNetTransformerExtensions.Tests.MLNet.TextClassificationTestData;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>
/// The estimator contract, end to end with a fake classifier: schema → Fit → Transform → Evaluate →
/// CrossValidate → Save → Load in a new MLContext → PredictionEngine, for both catalogs' tasks.
/// </summary>
[TestClass]
public sealed class TextClassificationContractTests
{
    [TestMethod]
    public void MulticlassPipelineLearnsAndEvaluates()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TopicRows(90));
        var model = MulticlassPipelineWithLabelBack(ml, new FakeNaiveBayesTrainer()).Fit(data);

        var scored = model.Transform(data);
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Assert.IsGreaterThan(0.95, metrics.MicroAccuracy, $"micro accuracy {metrics.MicroAccuracy}");
        Assert.IsLessThan(0.5, metrics.LogLoss);

        // MapKeyToValue turned the predicted key back into the topic names.
        var predicted = scored.GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(p => p.ToString()).ToList();
        CollectionAssert.AreEqual(TopicRows(90).Select(r => r.Label).ToList(), predicted);
    }

    [TestMethod]
    public void MulticlassOutputColumnsCarryTheAnnotationsEvaluatorsRead()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TopicRows(30));
        var model = MulticlassPipeline(ml, new FakeNaiveBayesTrainer()).Fit(data);
        var schema = model.Transform(data).Schema;

        var score = schema["Score"];
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 3), score.Type);
        var slotNames = default(VBuffer<ReadOnlyMemory<char>>);
        score.GetSlotNames(ref slotNames);
        CollectionAssert.AreEqual(Topics, slotNames.DenseValues().Select(n => n.ToString()).ToArray());
        var trainingLabels = default(VBuffer<ReadOnlyMemory<char>>);
        score.Annotations.GetValue("TrainingLabelValues", ref trainingLabels);
        CollectionAssert.AreEqual(Topics, trainingLabels.DenseValues().Select(n => n.ToString()).ToArray());
        Assert.AreEqual("MulticlassClassification", TextAnnotation(score, "ScoreColumnKind"));
        Assert.AreEqual("Score", TextAnnotation(score, "ScoreValueKind"));

        var predicted = schema["PredictedLabel"];
        Assert.AreEqual(new KeyDataViewType(typeof(uint), 3), predicted.Type);
        var keyValues = default(VBuffer<ReadOnlyMemory<char>>);
        predicted.GetKeyValues(ref keyValues);
        CollectionAssert.AreEqual(Topics, keyValues.DenseValues().Select(n => n.ToString()).ToArray());
        Assert.AreEqual("PredictedLabel", TextAnnotation(predicted, "ScoreValueKind"));
        Assert.AreEqual(SetId(score), SetId(predicted));

        // Probabilities in key order, summing to 1, and the predicted key is their argmax.
        var scores = model.Transform(data).GetColumn<float[]>("Score").ToList();
        var keys = model.Transform(data).GetColumn<uint>("PredictedLabel").ToList();
        for (var row = 0; row < scores.Count; row++)
        {
            Assert.AreEqual(1.0, scores[row].Sum(), 1e-5);
            Assert.AreEqual((uint)(Array.IndexOf(scores[row], scores[row].Max()) + 1), keys[row]);
        }
    }

    [TestMethod]
    public void EstimatorOutputSchemaDeclaresWhatTransformProduces()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TopicRows(30));
        var mapKey = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data);
        var keyed = mapKey.Transform(data);

        foreach (var (task, input) in new[] { (TextClassificationTask.Multiclass, keyed), (TextClassificationTask.Binary, ml.Data.LoadFromEnumerable(SentimentRows(20))) })
        {
            var estimator = new TextClassificationEstimator(ml, task, new TextClassificationOptions(), new FakeNaiveBayesTrainer(), FakeNaiveBayesClassifier.Kind);
            var declared = estimator.GetOutputSchema(SchemaShapes.FromSchema(input.Schema));
            var actual = SchemaShapes.FromSchema(estimator.Fit(input).Transform(input).Schema);

            CollectionAssert.AreEqual(actual.Select(c => c.Name).ToList(), declared.Select(c => c.Name).ToList(), task.ToString());
            foreach (var column in actual)
            {
                var expected = declared.Single(c => c.Name == column.Name);
                Assert.AreEqual(column.Kind, expected.Kind, column.Name);
                Assert.AreEqual(column.ItemType, expected.ItemType, column.Name);
                Assert.AreEqual(column.IsKey, expected.IsKey, column.Name);
                CollectionAssert.AreEquivalent(column.Annotations.Select(a => a.Name).ToList(), expected.Annotations.Select(a => a.Name).ToList(), column.Name);
            }
        }
    }

    [TestMethod]
    public void BinaryClassifierLearnsAndEvaluatesCalibratedAndNot()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(SentimentRows(60));
        var model = BinaryEstimator(ml, new FakeNaiveBayesTrainer()).Fit(data);
        var scored = model.Transform(data);

        var schema = scored.Schema;
        Assert.AreEqual(NumberDataViewType.Single, schema["Score"].Type);
        Assert.AreEqual(NumberDataViewType.Single, schema["Probability"].Type);
        Assert.AreEqual(BooleanDataViewType.Instance, schema["PredictedLabel"].Type);
        Assert.IsTrue(schema["Probability"].IsNormalized());
        Assert.AreEqual("BinaryClassification", TextAnnotation(schema["Probability"], "ScoreColumnKind"));
        Assert.AreEqual("Probability", TextAnnotation(schema["Probability"], "ScoreValueKind"));

        var metrics = ml.BinaryClassification.Evaluate(scored);
        Assert.IsGreaterThan(0.95, metrics.Accuracy);
        Assert.IsGreaterThan(0.95, metrics.AreaUnderRocCurve);
        var uncalibrated = ml.BinaryClassification.EvaluateNonCalibrated(scored);
        Assert.AreEqual(metrics.Accuracy, uncalibrated.Accuracy, 1e-9);

        // Score is the log-odds: positive exactly when the probability of true exceeds one half.
        foreach (var row in ml.Data.CreateEnumerable<SentimentPrediction>(scored, reuseRowObject: false))
        {
            // Near 0 or 1, the Single probability is too coarse to recompute the log-odds from.
            if (row.Probability is > 0.001f and < 0.999f)
            {
                Assert.AreEqual(Math.Log(row.Probability / (1 - row.Probability)), row.Score, 1e-3);
            }

            Assert.AreEqual(row.Score > 0, row.PredictedLabel);
        }
    }

    [TestMethod]
    public void BinaryOutputsFollowTheProbabilityOfTrue()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(SentimentRows(4));
        var model = BinaryEstimator(ml, new FakeNaiveBayesTrainer()).Fit(data);
        float[][] answers = [[0.2f, 0.8f], [0.6f, 0.4f], [0f, 1f], [0.5f, 0.5f]];
        ((FakeNaiveBayesClassifier)model.Classifier).Override = _ => answers;

        var rows = ml.Data.CreateEnumerable<SentimentPrediction>(model.Transform(data), reuseRowObject: false).ToList();

        CollectionAssert.AreEqual(new[] { 0.8f, 0.4f, 1f, 0.5f }, rows.Select(r => r.Probability).ToArray());
        Assert.AreEqual(Math.Log(4), rows[0].Score, 1e-6);
        Assert.AreEqual(Math.Log(0.4 / 0.6), rows[1].Score, 1e-6);
        Assert.IsTrue(float.IsFinite(rows[2].Score) && rows[2].Score > 50, "a zero probability keeps the margin finite");
        Assert.AreEqual(0f, rows[3].Score);
        CollectionAssert.AreEqual(new[] { true, false, true, false }, rows.Select(r => r.PredictedLabel).ToArray());
    }

    [TestMethod]
    public void CrossValidationFitsOneClassifierPerFold()
    {
        var ml = new MLContext(seed: 1);
        var trainer = new FakeNaiveBayesTrainer();
        var topics = ml.MulticlassClassification.CrossValidate(ml.Data.LoadFromEnumerable(TopicRows(90)), MulticlassPipeline(ml, trainer), numberOfFolds: 3);
        Assert.HasCount(3, topics);
        Assert.HasCount(3, trainer.Calls);
        Assert.IsTrue(topics.All(f => f.Metrics.MicroAccuracy > 0.8), string.Join(", ", topics.Select(f => f.Metrics.MicroAccuracy)));

        var binaryTrainer = new FakeNaiveBayesTrainer();
        var sentiment = ml.BinaryClassification.CrossValidate(ml.Data.LoadFromEnumerable(SentimentRows(60)), BinaryEstimator(ml, binaryTrainer), numberOfFolds: 3);
        Assert.HasCount(3, sentiment);
        Assert.HasCount(3, binaryTrainer.Calls);
        Assert.IsTrue(sentiment.All(f => f.Metrics.Accuracy > 0.8), string.Join(", ", sentiment.Select(f => f.Metrics.Accuracy)));
        var nonCalibrated = ml.BinaryClassification.CrossValidateNonCalibrated(ml.Data.LoadFromEnumerable(SentimentRows(60)), BinaryEstimator(ml, binaryTrainer), numberOfFolds: 3);
        Assert.HasCount(3, nonCalibrated);
    }

    [TestMethod]
    public void SavedMulticlassModelLoadsInANewContextWithIdenticalScores()
    {
        var data = TopicRows(40);
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(data);
        var model = MulticlassPipelineWithLabelBack(ml, new FakeNaiveBayesTrainer(), new TextClassificationOptions { BatchSize = 7 }).Fit(view);
        var path = Path.Combine(TestPaths.NewTempDirectory(), "model.zip");
        ml.Model.Save(model, view.Schema, path);

        var other = new MLContext(seed: 2);
        var loaded = other.Model.Load(path, out var inputSchema);
        Assert.AreEqual(view.Schema.Count, inputSchema.Count);
        var before = model.Transform(view);
        var after = loaded.Transform(other.Data.LoadFromEnumerable(data));
        CollectionAssert.AreEqual(before.GetColumn<float[]>("Score").SelectMany(s => s).ToList(), after.GetColumn<float[]>("Score").SelectMany(s => s).ToList());
        CollectionAssert.AreEqual(
            before.GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(p => p.ToString()).ToList(),
            after.GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(p => p.ToString()).ToList());

        var restored = Find(loaded);
        Assert.AreEqual(7, restored.BatchSize);
        Assert.AreEqual(FakeNaiveBayesClassifier.Kind, restored.ModelFormat);
        CollectionAssert.AreEqual(Topics, restored.ClassNames.ToArray());
        Assert.AreEqual("Text", restored.TextColumnName);
        Assert.IsNull(restored.ProbabilityColumnName);

        using var engine = other.Model.CreatePredictionEngine<TopicInput, TopicPrediction>(loaded);
        var prediction = engine.Predict(new TopicInput { Text = "the coach praised the striker after the match" });
        Assert.AreEqual("sports", prediction.PredictedLabel);
        Assert.HasCount(3, prediction.Score);
    }

    [TestMethod]
    public void SavedBinaryModelLoadsInANewContextWithIdenticalScores()
    {
        var data = SentimentRows(40);
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(data);
        var model = BinaryEstimator(ml, new FakeNaiveBayesTrainer()).Fit(view);
        using var stream = new MemoryStream();
        ml.Model.Save(model, view.Schema, stream);
        stream.Position = 0;

        var other = new MLContext();
        var loaded = other.Model.Load(stream, out _);
        var before = ml.Data.CreateEnumerable<SentimentPrediction>(model.Transform(view), reuseRowObject: false).ToList();
        var after = other.Data.CreateEnumerable<SentimentPrediction>(loaded.Transform(other.Data.LoadFromEnumerable(data)), reuseRowObject: false).ToList();
        CollectionAssert.AreEqual(before.Select(p => (p.Score, p.Probability, p.PredictedLabel)).ToList(), after.Select(p => (p.Score, p.Probability, p.PredictedLabel)).ToList());
        Assert.IsGreaterThan(0.95, other.BinaryClassification.Evaluate(loaded.Transform(other.Data.LoadFromEnumerable(data))).Accuracy);
    }

    [TestMethod]
    public void NumericLabelsKeepTheirTypeThroughSaveAndLoad()
    {
        // Key values of type Single (from numeric labels) must come back as Single, not as text.
        var ml = new MLContext(seed: 1);
        var rows = TopicRows(30).Select(r => new { r.Text, Label = (float)Array.IndexOf(Topics, r.Label) * 10 }).ToList();
        var view = ml.Data.LoadFromEnumerable(rows);
        var model = MulticlassPipelineWithLabelBack(ml, new FakeNaiveBayesTrainer()).Fit(view);
        Assert.AreEqual(NumberDataViewType.Single, model.Transform(view).Schema["PredictedLabel"].Type);

        using var stream = new MemoryStream();
        ml.Model.Save(model, view.Schema, stream);
        stream.Position = 0;
        var loaded = new MLContext().Model.Load(stream, out _);
        var predicted = loaded.Transform(view).GetColumn<float>("PredictedLabel").ToList();
        CollectionAssert.AreEqual(rows.Select(r => r.Label).ToList(), predicted);
        CollectionAssert.AreEqual(new[] { "0", "10", "20" }, Find(loaded).ClassNames.ToArray());
    }

    [TestMethod]
    public void PredictionEngineCallsTheModelOncePerRow()
    {
        var ml = new MLContext(seed: 1);
        var model = MulticlassPipelineWithLabelBack(ml, new FakeNaiveBayesTrainer()).Fit(ml.Data.LoadFromEnumerable(TopicRows(30)));
        var fake = Fake(model);
        fake.BatchSizes.Clear();

        using var engine = ml.Model.CreatePredictionEngine<TopicInput, TopicPrediction>(model);
        var answers = new[] { "bake the bread in the oven", "the server runs new software", "the team scored a goal" }
            .Select(text => engine.Predict(new TopicInput { Text = text }).PredictedLabel)
            .ToList();

        CollectionAssert.AreEqual(new[] { "cooking", "tech", "sports" }, answers);
        CollectionAssert.AreEqual(new[] { 1, 1, 1 }, fake.BatchSizes, "Score and PredictedLabel of one row must share one call");
    }

    [TestMethod]
    public void TextPairsReachTheClassifier()
    {
        var ml = new MLContext(seed: 1);
        var rows = PairRows(45);
        var view = ml.Data.LoadFromEnumerable(rows);
        var options = new TextClassificationOptions { TextColumnName = "Premise", SecondTextColumnName = "Hypothesis" };
        var model = MulticlassPipelineWithLabelBack(ml, new FakeNaiveBayesTrainer(), options).Fit(view);

        var predicted = model.Transform(view).GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(p => p.ToString()).ToList();
        CollectionAssert.AreEqual(rows.Select(r => r.Label).ToList(), predicted, "the label depends on the second text only");
        CollectionAssert.Contains(Fake(model).ScoredTexts, "||" + rows[0].Hypothesis);

        using var stream = new MemoryStream();
        ml.Model.Save(model, view.Schema, stream);
        stream.Position = 0;
        var loaded = new MLContext().Model.Load(stream, out _);
        Assert.AreEqual("Hypothesis", Find(loaded).SecondTextColumnName);
        CollectionAssert.AreEqual(predicted, loaded.Transform(view).GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(p => p.ToString()).ToList());
    }

    [TestMethod]
    public void DisposingTheTransformerDisposesTheClassifier()
    {
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(SentimentRows(20));
        var model = BinaryEstimator(ml, new FakeNaiveBayesTrainer()).Fit(view);
        var fake = (FakeNaiveBayesClassifier)model.Classifier;

        model.Dispose();
        model.Dispose();

        Assert.IsTrue(fake.Disposed);
        Assert.ThrowsExactly<ObjectDisposedException>(() => model.Transform(view));
    }

    private static string TextAnnotation(DataViewSchema.Column column, string kind)
    {
        var value = default(ReadOnlyMemory<char>);
        column.Annotations.GetValue(kind, ref value);
        return value.ToString();
    }

    private static uint SetId(DataViewSchema.Column column)
    {
        uint value = 0;
        column.Annotations.GetValue("ScoreColumnSetId", ref value);
        return value;
    }
}
