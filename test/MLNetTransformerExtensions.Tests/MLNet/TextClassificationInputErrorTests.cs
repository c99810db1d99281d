using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.MLNet;
using static MLNetTransformerExtensions.Tests.MLNet.TextClassificationTestData;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>Bad input fails early, and the message names the column (or row), what was expected and what was found.</summary>
[TestClass]
public sealed class TextClassificationInputErrorTests
{
    [TestMethod]
    public void AMissingTextColumnIsNamedWithTheColumnsThatExist()
    {
        var ml = new MLContext();
        var estimator = MulticlassPipeline(ml, new FakeNaiveBayesTrainer(), new TextClassificationOptions { TextColumnName = "Body" });

        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(TopicRows(9))));
        StringAssert.Contains(error.Message, "Text column 'Body' is not in the input");
        StringAssert.Contains(error.Message, "'Text'");
    }

    [TestMethod]
    public void ATextColumnOfAnotherTypeIsReported()
    {
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(TopicRows(9).Select(r => new { Text = 1f, r.Label }));

        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => MulticlassPipeline(ml, new FakeNaiveBayesTrainer()).Fit(data));
        StringAssert.Contains(error.Message, "Text column 'Text' has type Single; expected String");
    }

    [TestMethod]
    public void AMulticlassLabelThatIsNotAKeyPointsToMapValueToKey()
    {
        var ml = new MLContext();
        var estimator = new TextClassificationEstimator(ml, TextClassificationTask.Multiclass, new TextClassificationOptions(), new FakeNaiveBayesTrainer(), FakeNaiveBayesClassifier.Kind);

        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => estimator.Fit(ml.Data.LoadFromEnumerable(TopicRows(9))));
        StringAssert.Contains(error.Message, "Label column 'Label' has type String; expected Key<UInt32>");
        StringAssert.Contains(error.Message, "MapValueToKey(\"Label\")");

        var shapeError = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            estimator.GetOutputSchema(MLNetTransformerExtensions.MLNet.Internal.SchemaShapes.FromSchema(ml.Data.LoadFromEnumerable(TopicRows(9)).Schema)));
        StringAssert.Contains(shapeError.Message, "Label column 'Label' has type String; expected Key<UInt32>");
    }

    [TestMethod]
    public void ABinaryLabelMustBeBoolean()
    {
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(SentimentRows(10).Select(r => new { r.Text, Label = r.Label ? 1f : 0f }));

        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => BinaryEstimator(ml, new FakeNaiveBayesTrainer()).Fit(data));
        StringAssert.Contains(error.Message, "Label column 'Label' has type Single; expected Boolean");
    }

    [TestMethod]
    public void AMissingLabelNamesTheRow()
    {
        var ml = new MLContext();
        var rows = TopicRows(9);
        var mapKey = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(rows));
        rows[4].Label = "gardening"; // unseen by MapValueToKey: key 0
        var keyed = mapKey.Transform(ml.Data.LoadFromEnumerable(rows));
        var estimator = new TextClassificationEstimator(ml, TextClassificationTask.Multiclass, new TextClassificationOptions(), new FakeNaiveBayesTrainer(), FakeNaiveBayesClassifier.Kind);

        var error = Assert.ThrowsExactly<InvalidOperationException>(() => estimator.Fit(keyed));
        StringAssert.Contains(error.Message, "Row 4 of the training data has no label");
        StringAssert.Contains(error.Message, "FilterRowsByMissingValues");

        // The advice works: filtering the row out lets training proceed.
        var filtered = ml.Data.FilterRowsByMissingValues(keyed, "Label");
        Assert.AreEqual(3, estimator.Fit(filtered).ClassNames.Count);
    }

    [TestMethod]
    public void OneClassIsNotEnough()
    {
        var ml = new MLContext();
        var oneKey = ml.Data.LoadFromEnumerable(TopicRows(9).Select(r => new { r.Text, Label = "sports" }));
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => MulticlassPipeline(ml, new FakeNaiveBayesTrainer()).Fit(oneKey));
        StringAssert.Contains(error.Message, "key with 1 value(s)");

        // Two classes in the key, but the rows hold only one of them.
        var rows = TopicRows(9).Select(r => new { r.Text, r.Label }).ToList();
        var mapKey = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(rows));
        var onlySports = mapKey.Transform(ml.Data.LoadFromEnumerable(rows.Where(r => r.Label == "sports")));
        var estimator = new TextClassificationEstimator(ml, TextClassificationTask.Multiclass, new TextClassificationOptions(), new FakeNaiveBayesTrainer(), FakeNaiveBayesClassifier.Kind);
        var rowsError = Assert.ThrowsExactly<InvalidOperationException>(() => estimator.Fit(onlySports));
        StringAssert.Contains(rowsError.Message, "Every training row has the class 'sports'");

        var allTrue = ml.Data.LoadFromEnumerable(SentimentRows(10).Select(r => new { r.Text, Label = true }));
        Assert.ThrowsExactly<InvalidOperationException>(() => BinaryEstimator(ml, new FakeNaiveBayesTrainer()).Fit(allTrue));
    }

    [TestMethod]
    public void NoRowsIsAnError()
    {
        var ml = new MLContext();
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => BinaryEstimator(ml, new FakeNaiveBayesTrainer()).Fit(ml.Data.LoadFromEnumerable(new List<SentimentRow>())));
        StringAssert.Contains(error.Message, "no rows");
    }

    [TestMethod]
    public void TransformNeedsTheTextColumnButNotTheLabel()
    {
        var ml = new MLContext(seed: 1);
        var model = BinaryEstimator(ml, new FakeNaiveBayesTrainer()).Fit(ml.Data.LoadFromEnumerable(SentimentRows(20)));

        var withoutLabel = ml.Data.LoadFromEnumerable(SentimentRows(5).Select(r => new { r.Text }));
        Assert.HasCount(5, model.Transform(withoutLabel).GetColumn<bool>("PredictedLabel").ToList());

        var withoutText = ml.Data.LoadFromEnumerable(SentimentRows(5).Select(r => new { Body = r.Text }));
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.Transform(withoutText));
        StringAssert.Contains(error.Message, "Text column 'Text' is not in the input");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.GetRowToRowMapper(withoutText.Schema));
    }

    [TestMethod]
    public void BadOptionsAreRejectedWhenTheEstimatorIsCreated()
    {
        var ml = new MLContext();
        var trainer = new FakeNaiveBayesTrainer();
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => BinaryEstimator(ml, trainer, new TextClassificationOptions { BatchSize = 0 }));
        Assert.ThrowsExactly<ArgumentException>(() => BinaryEstimator(ml, trainer, new TextClassificationOptions { TextColumnName = " " }));
        Assert.ThrowsExactly<ArgumentException>(() => BinaryEstimator(ml, trainer, new TextClassificationOptions { ProbabilityColumnName = "Score" }));
        Assert.ThrowsExactly<ArgumentException>(() => BinaryEstimator(ml, trainer, new TextClassificationOptions { SecondTextColumnName = "" }));
    }

    [TestMethod]
    public void AnUndeclaredKindIsRejectedBeforeTraining()
    {
        var ml = new MLContext();
        var error = Assert.ThrowsExactly<InvalidOperationException>(() =>
            new TextClassificationEstimator(ml, TextClassificationTask.Binary, new TextClassificationOptions(), new FakeNaiveBayesTrainer(), "no-such-kind"));
        StringAssert.Contains(error.Message, "[assembly: TextClassificationModelFormat(\"no-such-kind\"");
    }

    [TestMethod]
    public void ATrainerThatReturnsTheWrongClassCountIsReported()
    {
        var ml = new MLContext();
        var trainer = new FakeNaiveBayesTrainer
        {
            Factory = examples => FakeNaiveBayesClassifier.Train(examples with { Labels = examples.Labels.Select(l => l % 2).ToList() }, classCount: 2),
        };

        var error = Assert.ThrowsExactly<InvalidOperationException>(() => MulticlassPipeline(ml, trainer).Fit(ml.Data.LoadFromEnumerable(TopicRows(9))));
        StringAssert.Contains(error.Message, "returned a classifier with 2 classes; the label 'Label' has 3");
    }
}
