using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace MLNetTransformerExtensions.MLNet.Internal;

/// <summary>
/// Cancels an <see cref="MLContext"/> when a token fires, through ML.NET's internal <c>ICancelable.CancelExecution</c>
/// (what AutoML uses to stop a trial): ML.NET's own trainers take no <see cref="CancellationToken"/>, but poll this flag
/// between iterations and then throw. The cancellation is permanent, so use a context per trial.
/// </summary>
internal static class ContextCancellation
{
    public static CancellationTokenRegistration CancelOn(MLContext mlContext, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return token.Register(static context => ((ICancelable)context!).CancelExecution(), mlContext);
    }
}
