using System.Diagnostics;
using System.Diagnostics.Metrics;
using MLNetTransformerExtensions.Diagnostics;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.Diagnostics;

[TestClass]
public sealed class TransformerTelemetryTests
{
    [TestMethod]
    public void ScoringPublishesStageTimesBatchCountsAndASpanToListeners()
    {
        var seconds = new Dictionary<string, double>();
        var counts = new Dictionary<string, long>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == TransformerTelemetry.Name)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<double>((instrument, value, _, _) => seconds[instrument.Name] = seconds.GetValueOrDefault(instrument.Name) + value);
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => counts[instrument.Name] = counts.GetValueOrDefault(instrument.Name) + value);
        listener.Start();
        var spans = new List<string>();
        using var activities = new ActivityListener
        {
            ShouldListenTo = source => source.Name == TransformerTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStopped = activity => spans.Add(activity.OperationName),
        };
        ActivitySource.AddActivityListener(activities);

        using (var classifier = HeadClassifier.FromPretrained(TestPaths.Fixtures("hf-tiny", "bert"), ["a", "b"], ClassifierKind.Encoder, 16, seed: 1, out _))
        {
            classifier.PredictProbabilities(["one text", "and another, longer text"], null);
        }

        Assert.IsTrue(seconds.GetValueOrDefault(TransformerTelemetry.Tokenization.Name) > 0, "tokenization is timed");
        Assert.IsTrue(seconds.GetValueOrDefault(TransformerTelemetry.Forward.Name) > 0, "the forward pass is timed");
        Assert.IsTrue(counts.GetValueOrDefault(TransformerTelemetry.Batches.Name) >= 1, "every forward pass counts a batch");
        Assert.IsTrue(counts.GetValueOrDefault(TransformerTelemetry.PaddedTokens.Name) >= counts.GetValueOrDefault(TransformerTelemetry.Tokens.Name));
        CollectionAssert.Contains(spans, "Score");
    }

    [TestMethod]
    public void InstrumentsAreOffWhenNobodyListens()
    {
        // No listener in this test enables the stage histograms, so Start returns 0 and Stop records nothing.
        Assert.IsFalse(TransformerTelemetry.Backward.Enabled);
        Assert.AreEqual(0L, TransformerTelemetry.Start(TransformerTelemetry.Backward));
    }
}
