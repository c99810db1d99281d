using MLNetTransformerExtensions.Diagnostics;
using MLNetTransformerExtensions.Hub;
using MLNetTransformerExtensions.Sources;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>Builds a classifier from the model path and fine-tunes it on the rows the estimator read.</summary>
internal sealed class HeadClassificationTrainer(string modelPath, HubOptions? hub, ClassifierKind kind, FineTuningOptions options, InferencePrecision precision) : ITextClassificationTrainer
{
    public ITextClassificationModel Train(LabeledTexts training, LabeledTexts? validation, IReadOnlyList<string> classNames, TextClassificationTrainingContext context)
    {
        var setup = TransformerTelemetry.Start(TransformerTelemetry.Setup);
        var folder = ModelLocator.Resolve(modelPath, hub, cancellationToken: context.CancellationToken);
        var classifier = HeadClassifier.FromPretrained(folder, classNames, kind, options.MaxLength, context.Seed, out var report);
        TransformerTelemetry.Stop(TransformerTelemetry.Setup, setup);
        context.Log(report?.ToString() ?? $"'{folder}' has no weights: training from scratch.");
        try
        {
            FineTuner.Train(classifier, training, validation, options with { Seed = context.Seed }, context.Progress, context.CancellationToken);
        }
        catch
        {
            classifier.Dispose();
            throw;
        }

        classifier.InferencePrecision = precision;
        return new HeadClassificationModel(classifier);
    }
}
