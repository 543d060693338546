// Stripe's Payment Element, with a real publishable key only: Stripe.js confirms the intent the
// server created and comes back to /payment/success, which follows the booking.
const form = document.getElementById("stripe-form");
if (form && window.Stripe) {
  const stripe = window.Stripe(form.dataset.key, { locale: form.dataset.locale });
  const elements = stripe.elements({ clientSecret: form.dataset.secret });
  elements.create("payment").mount("#payment-element");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    const { error } = await stripe.confirmPayment({ elements, confirmParams: { return_url: form.dataset.return } });
    if (error) {
      const box = document.getElementById("stripe-error");
      box.textContent = error.message;
      box.hidden = false;
      button.disabled = false;
    }
  });
}
