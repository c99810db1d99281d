using Microsoft.Extensions.AI;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>"Trains" a chat classifier: learns the label set and picks the demonstrations; no gradient, no request.</summary>
internal sealed class ChatClassificationTrainer(IChatClient client, ChatClassifierSettings settings, int shotsPerClass, string? cacheDirectory, CancellationToken scoring)
    : ITextClassificationTrainer
{
    public ITextClassificationModel Train(LabeledTexts training, LabeledTexts? validation, IReadOnlyList<string> classNames, TextClassificationTrainingContext context)
    {
        context.CancellationToken.ThrowIfCancellationRequested();
        var demonstrations = ChatClassifier.PickDemonstrations(training, classNames.Count, shotsPerClass, context.Seed);
        var classifier = new ChatClassifier(settings, classNames, demonstrations)
        {
            Client = client,
            Cache = cacheDirectory is null ? null : new ChatResponseCache(cacheDirectory),
            CancellationToken = scoring,
        };
        context.Log($"Chat classifier on '{settings.ModelId}': {classNames.Count} labels, {demonstrations.Count} demonstrations; nothing to train.");
        return new ChatClassificationModel(classifier);
    }
}
