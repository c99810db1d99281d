using Microsoft.ML;

namespace MLNetTransformerExtensions.MLNet.Internal;

/// <summary>
/// Cancels an <see cref="MLContext"/> when a token fires, through ML.NET's internal <c>MLContext.CancelExecution</c>
/// (what AutoML uses to stop a trial): ML.NET's own trainers take no <see cref="CancellationToken"/>, but poll their
/// environment's flag between iterations and then throw. The cancellation is permanent, so use a context per trial.
/// </summary>
internal static class ContextCancellation
{
    public static CancellationTokenRegistration CancelOn(MLContext mlContext, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        // The callback may run on a timer thread, where an exception would end the process: it only sets a flag.
        return token.Register(static context => ((MLContext)context!).CancelExecution(), mlContext);
    }
}
