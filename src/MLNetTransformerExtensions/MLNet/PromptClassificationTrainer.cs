using MLNetTransformerExtensions.Sources;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>Builds a prompt classifier for the classes the estimator found, and fine-tunes it (or not, with 0 epochs).</summary>
internal sealed class PromptClassificationTrainer(TransformerClassifierOptions settings, ClassifierKind kind, FineTuningOptions options) : ITextClassificationTrainer
{
    public ITextClassificationModel Train(LabeledTexts training, LabeledTexts? validation, IReadOnlyList<string> classNames, TextClassificationTrainingContext context)
    {
        var folder = ModelLocator.Resolve(settings.ModelPath, settings.Hub, cancellationToken: context.CancellationToken);
        var prompt = new PromptOptions
        {
            Template = settings.PromptTemplate ?? (settings.SecondTextColumnName is null ? null : Training.PromptTemplate.DefaultFor(kind, pairs: true)),
            LabelWords = settings.LabelWords is null ? null : Verbalizer.Parse(settings.LabelWords, classNames),
            Shots = settings.Shots,
            Calibrate = settings.Calibrate,
            LengthNormalized = settings.LengthNormalizedLabelWords,
        };
        var classifier = PromptClassifier.FromPretrained(folder, classNames, kind, prompt, options.MaxLength, context.Seed, out var report);
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

        classifier.InferencePrecision = settings.InferencePrecision;
        return new PromptClassificationModel(classifier);
    }
}
