using System.Text.RegularExpressions;
using Microsoft.ML;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Tests.Training;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>The HTML training report: what it shows, computed right, and self-contained.</summary>
[TestClass]
public sealed partial class TrainingReportTests
{
    private sealed class Row
    {
        public string Text { get; set; } = string.Empty;

        public string Label { get; set; } = string.Empty;
    }

    /// <summary>A report of a tiny BERT trained two epochs with validation, with an explained evaluation and a second model beside it.</summary>
    internal static TrainingReport TinyReport()
    {
        var ml = new MLContext(seed: 1);
        var (texts, labels) = SyntheticReviews.Binary(48, seed: 3);
        var names = new[] { "negative", "positive" };
        var rows = texts.Select((t, i) => new Row { Text = t, Label = names[labels[i]] }).ToList();
        var report = new TrainingReport("Synthetic reviews, tiny BERT <test>");
        var toKey = ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue);
        var data = ml.Data.LoadFromEnumerable(rows);
        var validation = toKey.Fit(data).Transform(ml.Data.LoadFromEnumerable(rows.Take(16)));
        var model = toKey.Append(ml.MulticlassClassification.Trainers.EncoderClassifier(new EncoderClassifierOptions
        {
            ModelPath = TestPaths.Fixtures("hf-tiny", "bert"),
            NumberOfEpochs = 2,
            BatchSize = 16,
            LearningRate = 1e-3,
            MaximumLength = 24,
            ValidationSet = validation,
            Progress = report,
        })).Fit(data);
        using var classifier = model.LastTransformer;
        report.AddEvaluation("tiny BERT", classifier, texts, [.. labels.Select(l => names[l])], explainedMistakes: 2);
        // A second model that is always 90 % sure of "positive".
        report.AddEvaluation("always positive", names, texts, labels, [.. texts.Select(_ => new[] { 0.1f, 0.9f })]);
        return report;
    }

    [TestMethod]
    public void TheReportShowsCurvesMatricesCalibrationAndExplainedMistakesInOneFile()
    {
        var html = TinyReport().ToHtml();
        StringAssert.StartsWith(html, "<!DOCTYPE html>");
        StringAssert.Contains(html, "name=\"viewport\"");
        StringAssert.Contains(html, "Synthetic reviews, tiny BERT &lt;test&gt;", "the title is escaped");
        foreach (var section in new[] { "Training loss", "Learning rate by step", "Validation accuracy", "Confusion matrix", "Reliability", "Per class", "Most confidently wrong", "always positive" })
        {
            StringAssert.Contains(html, section);
        }

        Assert.IsGreaterThanOrEqualTo(2 + 2 + 3, Regex.Count(html, "<svg "), "three training curves and two figures per model");
        Assert.DoesNotContain("<script", html, "no scripts");
        Assert.IsFalse(ExternalReference().IsMatch(html), "nothing is loaded from elsewhere");
        // The always-positive model: accuracy 0.5, precision of positive 0.5, recall 1; calibration gap |0.9 - 0.5|.
        StringAssert.Contains(html, "<tr><td>always positive</td><td>48</td><td>0.5000</td><td>0.3333</td>");
        StringAssert.Contains(html, "<tr><td>positive</td><td>0.5000</td><td>1.0000</td><td>0.6667</td><td>24</td></tr>");
        StringAssert.Contains(html, "ECE 0.400");
    }

    [TestMethod]
    public void MetricsMatchHandCountedExamples()
    {
        var e = new ReportedEvaluation("m", ["a", "b", "c"], ["1", "2", "3", "4"], [0, 1, 2, 2],
            [[0.85f, 0.1f, 0.05f], [0.65f, 0.25f, 0.1f], [0.1f, 0.15f, 0.75f], [0.05f, 0.88f, 0.07f]], []);
        var confusion = ReportMetrics.Confusion(e);
        Assert.AreEqual(1, confusion[0, 0]);
        Assert.AreEqual(1, confusion[1, 0]);
        Assert.AreEqual(1, confusion[2, 1]);
        Assert.AreEqual(1, confusion[2, 2]);
        var perClass = ReportMetrics.PerClass(confusion);
        Assert.AreEqual(0.5, perClass[0].Precision, 1e-12);
        Assert.AreEqual(1.0, perClass[0].Recall, 1e-12);
        Assert.AreEqual(0.0, perClass[1].F1, 1e-12);
        Assert.AreEqual(0.5, ReportMetrics.Accuracy(e), 1e-12);
        CollectionAssert.AreEqual(new[] { 3, 1 }, ReportMetrics.ConfidentMistakes(e.Labels, e.Probabilities, 5), "wrong rows, most confident first");
        var (bins, ece) = ReportMetrics.Reliability(e);
        // Bins by top probability: [0.6, 0.7) holds row 1 (wrong), [0.7, 0.8) row 2 (right), [0.8, 0.9) rows 0 (right) and 3 (wrong).
        Assert.AreEqual(2, bins[8].Count);
        Assert.AreEqual(0.5, bins[8].Accuracy, 1e-12);
        Assert.AreEqual(0.865, bins[8].Confidence, 1e-6);
        Assert.AreEqual(((2 * Math.Abs(0.865 - 0.5)) + Math.Abs(0.65 - 0) + Math.Abs(0.75 - 1)) / 4, ece, 1e-6);
    }

    [TestMethod]
    public void MismatchedInputsAreRejectedWithTheRow()
    {
        var report = new TrainingReport("r");
        var e = Assert.ThrowsExactly<ArgumentException>(() => report.AddEvaluation("m", ["a", "b"], ["x"], [2], [[0.5f, 0.5f]]));
        StringAssert.Contains(e.Message, "Row 0 has class index 2, outside the 2 classes.");
        e = Assert.ThrowsExactly<ArgumentException>(() => report.AddEvaluation("m", ["a", "b"], ["x"], [1], [[1f]]));
        StringAssert.Contains(e.Message, "Row 0 has 1 probabilities for 2 classes.");
    }

    [GeneratedRegex("(src|href)\\s*=|url\\(|@import", RegexOptions.IgnoreCase)]
    private static partial Regex ExternalReference();
}
